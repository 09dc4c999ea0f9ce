import { signal } from '@preact/signals';
import { createClient, HttpStatusError, NetworkError, type TextClient } from '../../../src/client/index.ts';
import { diagnoseUnreachable, friendlyError } from '../api/friendly-error.ts';
import {
  type ConnectionConfig,
  defaultConnection,
  normalizeUserUrl,
  originOf,
  providers,
  sameOrigin,
} from '../api/providers.ts';

// The active connection. Settings (never the key) persist in localStorage. The key lives in sessionStorage
// unless the user ticks "remember", and it is bound to the origin it was entered for: pointing the provider at
// another host leaves the key behind instead of sending it there.

const configKey = 'kindling.connection';

function loadConfig(): ConnectionConfig {
  try {
    return {
      ...defaultConnection,
      ...(JSON.parse(localStorage.getItem(configKey) ?? '{}') as Partial<ConnectionConfig>),
    };
  } catch {
    return { ...defaultConnection };
  }
}

export const connectionConfig = signal<ConnectionConfig>(loadConfig());

export function setConnectionConfig(patch: Partial<ConnectionConfig>): void {
  connectionConfig.value = { ...connectionConfig.value, ...patch };
  localStorage.setItem(configKey, JSON.stringify(connectionConfig.value));
}

interface StoredKey {
  key: string;
  origin: string;
}

const keyName = (provider: string) => `kindling.key.${provider}`;

/**
 * The URLs of the URL field. Several, comma-separated, are nodes of one fleet: the SDK moves to the next on a
 * connection error and resumes a stream there.
 */
export function resolvedUrls(config: ConnectionConfig = connectionConfig.value): string[] {
  if (config.provider === 'kindling') {
    const origin = sameOrigin();
    return origin === undefined ? [] : [origin];
  }
  const def = providers[config.provider];
  return (config.baseUrl || def.defaultUrl)
    .split(',')
    .map((url) => normalizeUserUrl(url, def.api))
    .filter((url) => url.length > 0);
}

/** The first URL (the one a connection starts on), or '' when there is none. */
export function resolvedUrl(config: ConnectionConfig = connectionConfig.value): string {
  return resolvedUrls(config)[0] ?? '';
}

/** What a saved key is bound to: the origin, or with several URLs all their origins, so a new list drops it. */
function keyOrigin(config: ConnectionConfig): string | undefined {
  const origins = resolvedUrls(config).map(originOf);
  if (origins.length === 0 || origins.some((origin) => origin === undefined)) return undefined;
  return origins.join(' ');
}

/** The saved key for the current provider, only if it was entered for the same origin. */
export function storedKey(config: ConnectionConfig = connectionConfig.value): string {
  const raw = sessionStorage.getItem(keyName(config.provider)) ?? localStorage.getItem(keyName(config.provider));
  if (raw === null) return '';
  try {
    const stored = JSON.parse(raw) as StoredKey;
    return stored.origin === keyOrigin(config) ? stored.key : '';
  } catch {
    return '';
  }
}

export const apiKey = signal<string>(storedKey());

export function setApiKey(key: string): void {
  apiKey.value = key;
  const config = connectionConfig.value;
  const name = keyName(config.provider);
  sessionStorage.removeItem(name);
  localStorage.removeItem(name);
  const origin = keyOrigin(config);
  if (key.length === 0 || origin === undefined) return;
  (config.rememberKey ? localStorage : sessionStorage).setItem(name, JSON.stringify({ key, origin }));
}

export interface ConnectionInfo {
  url: string;
  server?: string;
  version?: string | undefined;
  model?: string | undefined;
  contextSize?: number | undefined;
  models: string[];
  canCountTokens: boolean;
}

export interface ConnectionState {
  phase: 'idle' | 'connecting' | 'connected' | 'error';
  info?: ConnectionInfo;
  error?: string;
  /** Set when a Kobold URL turned out to speak only the OpenAI API. */
  suggestOpenAi?: string[];
  /** The server wants a password (API key) that was missing or wrong. */
  needsKey?: boolean;
}

export const connectionState = signal<ConnectionState>({ phase: 'idle' });

let client: TextClient | undefined;
let attempt = 0;

export function currentClient(): TextClient | undefined {
  return connectionState.value.phase === 'connected' ? client : undefined;
}

let connecting: Promise<void> | undefined;

/** Connects with the current settings. A connect still running is superseded: its result is dropped. */
export function connect(): Promise<void> {
  const run = connectOnce();
  connecting = run;
  const settled = () => {
    if (connecting === run) connecting = undefined;
  };
  run.then(settled, settled);
  return run;
}

/** Settles once no connect is running: the latest one, when a newer connect replaced an earlier one. */
export async function connectionSettled(): Promise<void> {
  while (connecting !== undefined) await connecting.catch(() => {});
}

async function connectOnce(): Promise<void> {
  const config = connectionConfig.value;
  const def = providers[config.provider];
  const urls = resolvedUrls(config);
  const url = urls.join(', ');
  const baseUrl = urls.length > 1 ? urls : (urls[0] ?? '');
  const id = ++attempt;
  if (url.length === 0) {
    connectionState.value = {
      phase: 'error',
      error:
        'This page was opened from a file, so there is no Kindling server at its origin. Pick a provider and enter its URL.',
    };
    return;
  }
  connectionState.value = { phase: 'connecting' };
  const key = apiKey.value.trim();
  const heartbeat = def.api === 'kobold' && config.heartbeatSeconds > 0 ? config.heartbeatSeconds * 1000 : undefined;
  const next = createClient(def.api, {
    baseUrl,
    apiKey: key || undefined,
    model: config.model || undefined,
    ...(heartbeat !== undefined ? { heartbeatIntervalMs: heartbeat } : {}),
  });
  const signal = AbortSignal.timeout(15_000);
  try {
    const info = next.info ? await next.info({ signal }) : undefined;
    let models: string[] = [];
    try {
      models = (await next.listModels({ signal })).sort((a, b) => a.localeCompare(b));
    } catch (error) {
      // Listing is how OpenAI-family and Anthropic connections are tested; elsewhere `info` already proved it.
      if (info === undefined) throw error;
    }
    // A password-protected Kobold server answers its model and version routes to anyone but guards the rest:
    // a token count tells at once whether the key works, instead of failing on the first Generate.
    if (def.api === 'kobold' && next.countTokens !== undefined) {
      try {
        await next.countTokens('ping', { signal });
      } catch (error) {
        if (error instanceof HttpStatusError && (error.status === 401 || error.status === 403)) throw error;
      }
    }
    if (id !== attempt) return;
    const model = info?.model ?? (config.model || models[0]);
    if (def.api !== 'kobold' && model !== undefined && config.model.length === 0) setConnectionConfig({ model });
    client =
      def.api !== 'kobold' && model !== undefined && model !== config.model
        ? createClient(def.api, { baseUrl, apiKey: key || undefined, model })
        : next;
    connectionState.value = {
      phase: 'connected',
      info: {
        url,
        server: info?.kindling !== undefined ? 'Kindling' : (info?.server ?? def.label),
        version: info?.kindling ?? info?.version,
        model,
        contextSize: info?.maxContextLength,
        models,
        canCountTokens: typeof next.countTokens === 'function',
      },
    };
  } catch (error) {
    if (id !== attempt) return;
    let message = friendlyError(error, url);
    if (error instanceof NetworkError) message = (await diagnoseUnreachable(urls[0] ?? url)) ?? message;
    const state: ConnectionState = { phase: 'error', error: message };
    if (error instanceof HttpStatusError && (error.status === 401 || error.status === 403)) {
      state.needsKey = true;
      if (key.length === 0)
        state.error = `${url} is password-protected: enter its password as the API key, then Connect.`;
    }
    if (def.api === 'kobold' && !state.needsKey) {
      try {
        const models = await createClient('openai', { baseUrl, apiKey: key || undefined }).listModels({
          signal: AbortSignal.timeout(5000),
        });
        state.suggestOpenAi = models;
        state.error = `${url} does not speak the Kobold API, but it answers as an OpenAI-compatible server.`;
      } catch {
        // Not OpenAI either: keep the first message.
      }
    }
    if (id === attempt) connectionState.value = state;
  }
}
