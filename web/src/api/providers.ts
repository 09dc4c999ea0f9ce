import type { ApiKind } from '../../../src/client/index.ts';
import type { Samplers } from '../model/session.ts';

// The providers the connect panel offers. "kindling" is this server, reached at the page's own origin.
export type ProviderId = 'kindling' | 'kobold' | 'openai' | 'anthropic' | 'ollama';
export type StreamingMode = 'sse' | 'poll' | 'off';

export interface ProviderDef {
  id: ProviderId;
  label: string;
  api: ApiKind;
  defaultUrl: string;
  needsKey: boolean;
  /** Kobold servers can stream by polling /api/extra/generate/check (works through buffering proxies). */
  canPoll: boolean;
}

export const providers: Record<ProviderId, ProviderDef> = {
  kindling: {
    id: 'kindling',
    label: 'This Kindling server',
    api: 'kobold',
    defaultUrl: '',
    needsKey: false,
    canPoll: true,
  },
  kobold: {
    id: 'kobold',
    label: 'KoboldCpp / Kobold API',
    api: 'kobold',
    defaultUrl: 'http://localhost:5001',
    needsKey: false,
    canPoll: true,
  },
  openai: {
    id: 'openai',
    label: 'OpenAI-compatible',
    api: 'openai',
    defaultUrl: 'https://openrouter.ai/api/v1',
    needsKey: true,
    canPoll: false,
  },
  anthropic: {
    id: 'anthropic',
    label: 'Anthropic (Claude)',
    api: 'anthropic',
    defaultUrl: 'https://api.anthropic.com',
    needsKey: true,
    canPoll: false,
  },
  ollama: {
    id: 'ollama',
    label: 'Ollama',
    api: 'ollama',
    defaultUrl: 'http://localhost:11434',
    needsKey: false,
    canPoll: false,
  },
};

export interface OpenAiPreset {
  id: string;
  label: string;
  url: string;
  /** Chat completions (role-tagged messages) by default; a local server may prefer raw text completions. */
  chat: boolean;
}

export const openAiPresets: OpenAiPreset[] = [
  { id: 'openrouter', label: 'OpenRouter', url: 'https://openrouter.ai/api/v1', chat: true },
  { id: 'openai', label: 'OpenAI', url: 'https://api.openai.com/v1', chat: true },
  { id: 'deepseek', label: 'DeepSeek', url: 'https://api.deepseek.com/v1', chat: true },
  { id: 'mistral', label: 'Mistral', url: 'https://api.mistral.ai/v1', chat: true },
  { id: 'local', label: 'Local /v1 server', url: 'http://localhost:8080/v1', chat: false },
];

export interface ConnectionConfig {
  provider: ProviderId;
  baseUrl: string;
  model: string;
  streaming: StreamingMode;
  /** OpenAI-compatible: send messages to /chat/completions instead of a prompt to /completions. */
  chatApi: boolean;
  /** Keep the API key in this browser across restarts (default: only for this tab's session). */
  rememberKey: boolean;
  /**
   * Kobold: the server's heartbeat interval (our `--heartbeat`). A stream silent for longer is checked for a
   * proxy that holds it back, and then replies update by polling.
   */
  heartbeatSeconds: number;
}

export const defaultConnection: ConnectionConfig = {
  provider: 'kindling',
  baseUrl: '',
  model: '',
  streaming: 'sse',
  chatApi: true,
  rememberKey: false,
  heartbeatSeconds: 15,
};

/** The page's own origin, when it has one (not when opened from file://). */
export function sameOrigin(): string | undefined {
  return /^https?:$/.test(location.protocol) ? location.origin : undefined;
}

/**
 * Adds a scheme and removes pasted endpoint paths, so `host:5001`, `host:5001/api/v1` and
 * `https://x/v1/chat/completions` all work. LAN-looking hosts get http, others https (Lite's rule).
 */
export function normalizeUserUrl(raw: string, api: ApiKind): string {
  let url = raw
    .trim()
    .replace(/[#?].*$/, '')
    .replace(/\/+$/, '');
  if (url.length === 0) return url;
  if (!/^https?:\/\//i.test(url)) {
    const host = url.split(/[/:]/)[0] ?? '';
    const local =
      /^(localhost|127\.|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|\[?::1)/.test(host) ||
      /\.(local|lan|internal)$/.test(host) ||
      !host.includes('.');
    url = `${local ? 'http' : 'https'}://${url}`;
  }
  url = url.replace(/\/(chat\/)?completions$/, '').replace(/\/messages$/, '');
  if (api === 'kobold') url = url.replace(/\/api(\/v1)?$/, '').replace(/\/v1$/, '');
  if (api === 'ollama') url = url.replace(/\/api$/, '');
  return url;
}

export function originOf(url: string): string | undefined {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

const allSamplers: (keyof Samplers)[] = [
  'temperature',
  'top_p',
  'top_k',
  'min_p',
  'rep_pen',
  'rep_pen_range',
  'dry_multiplier',
  'dry_base',
  'dry_allowed_length',
  'xtc_threshold',
  'xtc_probability',
  'seed',
];

/** Samplers each API takes; the settings panel greys out the others instead of sending what is ignored. */
export const samplerSupport: Record<ApiKind, ReadonlySet<keyof Samplers>> = {
  kobold: new Set(allSamplers),
  ollama: new Set<keyof Samplers>(['temperature', 'top_p', 'top_k', 'min_p', 'rep_pen', 'rep_pen_range', 'seed']),
  openai: new Set<keyof Samplers>(['temperature', 'top_p', 'top_k', 'seed']),
  anthropic: new Set<keyof Samplers>(['temperature', 'top_p', 'top_k']),
};
