import { ProtocolError } from './client-errors.ts';
import type { ApiKind, ClientOptions } from './client-types.ts';
import { Endpoints } from './endpoints.ts';
import { resolveRetryPolicy } from './retry-policy.ts';
import type { DriverConfig } from './stream-driver.ts';

/** Options with defaults applied, shared by every provider client. */
export interface ClientConfig extends DriverConfig {
  api: ApiKind;
  /**
   * Normalised root of the URL in use now: Kobold `http://host:port`, OpenAI/Anthropic `…/v1`, Ollama
   * `http://host:port`. Read it for every request: with several base URLs it changes on failover.
   */
  readonly baseUrl: string;
  endpoints: Endpoints;
  options: ClientOptions;
  headers: Record<string, string>;
}

export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 45_000;

export function resolveClientConfig(api: ApiKind, options: ClientOptions): ClientConfig {
  const fetchFn = options.fetch ?? globalThis.fetch?.bind(globalThis);
  if (!fetchFn) throw new ProtocolError('no fetch implementation available; pass options.fetch');
  const raw = typeof options.baseUrl === 'string' ? [options.baseUrl] : options.baseUrl;
  const endpoints = new Endpoints(raw.map((url) => normalizeBaseUrl(api, url)));
  return {
    api,
    get baseUrl() {
      return endpoints.current;
    },
    endpoints,
    options,
    headers: { ...options.headers },
    fetch: fetchFn,
    retry: resolveRetryPolicy(options.retry),
    heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS,
    heartbeatAlways: options.heartbeatTimeoutMs !== undefined,
  };
}

/**
 * Accepts the URL forms users paste: a trailing `/`, a Kobold `/api` or `/api/v1`, an OpenAI endpoint path
 * (`/chat/completions`), and an OpenAI/Anthropic root without its `/v1`.
 */
export function normalizeBaseUrl(api: ApiKind, raw: string): string {
  let url = raw.trim().replace(/\/+$/, '');
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) url = `http://${url}`;
  switch (api) {
    case 'kobold':
      return url.replace(/\/api(\/v1)?$/, '');
    case 'ollama':
      return url.replace(/\/api$/, '');
    case 'openai':
    case 'anthropic': {
      url = url.replace(/\/(chat\/completions|completions|messages)$/, '');
      return /\/v\d+[a-z]*$/i.test(url) ? url : `${url}/v1`;
    }
  }
}

/** Assigns only the defined values, so an unset option never reaches the wire as `null` or `undefined`. */
export function definedFields(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) if (value !== undefined) out[key] = value;
  return out;
}

/** A random key for Kobold `genkey` and our `X-Kindling-Stream`; `crypto.getRandomValues` exists in browsers and Node. */
export function randomKey(prefix: string): string {
  const bytes = new Uint8Array(9);
  crypto.getRandomValues(bytes);
  let out = prefix;
  for (const byte of bytes) out += byte.toString(36).padStart(2, '0');
  return out;
}
