import {
  AbortedError,
  ConnectionRefusedError,
  HttpStatusError,
  KindlingClientError,
  NetworkError,
  ProtocolError,
} from './client-errors.ts';
import { readProviderErrorBody } from './provider-error-body.ts';
import { parseRetryAfter } from './retry-policy.ts';

export interface HttpRequest {
  method: 'GET' | 'POST';
  url: string;
  headers?: Record<string, string>;
  /** Serialised as JSON. */
  body?: unknown;
}

/**
 * One fetch, with every failure turned into an SDK error class: a rejected fetch becomes `NetworkError`
 * (or the signal's reason when the caller aborted), a non-2xx status becomes `HttpStatusError` with the
 * provider's own message and `retry-after`.
 */
export async function sendRequest(fetchFn: typeof fetch, request: HttpRequest, signal: AbortSignal): Promise<Response> {
  const headers: Record<string, string> = { ...request.headers };
  const init: RequestInit = { method: request.method, headers, signal };
  if (request.body !== undefined) {
    headers['content-type'] ??= 'application/json';
    init.body = JSON.stringify(request.body);
  }
  let response: Response;
  try {
    response = await fetchFn(request.url, init);
  } catch (error) {
    if (!signal.aborted && isConnectionRefused(error)) throw new ConnectionRefusedError(originOf(request.url), error);
    throw toClientError(error, signal);
  }
  if (!response.ok) throw await httpStatusError(response);
  return response;
}

export async function httpStatusError(response: Response): Promise<HttpStatusError> {
  let text = '';
  try {
    text = await response.text();
  } catch {
    // The body is only used for the message; a cut while reading it must not hide the status.
  }
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON (a proxy's HTML page, a plain-text error): keep the text.
  }
  const provider = readProviderErrorBody(body);
  const shouldRetry = response.headers.get('x-should-retry');
  return new HttpStatusError({
    status: response.status,
    statusText: response.statusText,
    providerMessage: provider.message,
    providerType: provider.type ?? (provider.code === undefined ? undefined : String(provider.code)),
    retryAfterMs: parseRetryAfter(response.headers),
    body,
    ...(shouldRetry === 'true' ? { retryable: true } : shouldRetry === 'false' ? { retryable: false } : {}),
  });
}

/** Reads a JSON body; a body that is not JSON is a protocol violation, a cut while reading is a network error. */
export async function readJson(response: Response, signal: AbortSignal): Promise<unknown> {
  let text: string;
  try {
    text = await response.text();
  } catch (error) {
    throw toClientError(error, signal);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ProtocolError(`expected JSON from ${response.url || 'the server'}, got: ${text.slice(0, 120)}`, error);
  }
}

/** GET or POST, then JSON, in one call (info, model lists, token counts, /check, /abort). */
export async function requestJson(fetchFn: typeof fetch, request: HttpRequest, signal: AbortSignal): Promise<unknown> {
  const response = await sendRequest(fetchFn, request, signal);
  return readJson(response, signal);
}

/**
 * Maps anything thrown by fetch or a body read to an SDK error. When `signal` aborted, its reason wins: a
 * `KindlingClientError` reason (the heartbeat's) is kept, any other reason means the caller aborted.
 */
export function toClientError(error: unknown, signal?: AbortSignal): KindlingClientError {
  if (signal?.aborted) {
    const reason: unknown = signal.reason;
    if (reason instanceof KindlingClientError) return reason;
    return new AbortedError(undefined, reason);
  }
  if (error instanceof KindlingClientError) return error;
  const message = error instanceof Error ? describeFetchError(error) : String(error);
  return new NetworkError(message, error);
}

/**
 * Node's fetch keeps the socket error in `cause`; with several addresses for one name (localhost: ::1 and
 * 127.0.0.1) it is an AggregateError of one refusal per address. Browsers do not tell a refusal apart.
 */
function isConnectionRefused(error: unknown): boolean {
  const cause: unknown = error instanceof Error ? error.cause : undefined;
  const refused = (e: unknown) => e instanceof Error && (e as Error & { code?: unknown }).code === 'ECONNREFUSED';
  if (refused(cause)) return true;
  return cause instanceof AggregateError && cause.errors.length > 0 && cause.errors.every(refused);
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}

function describeFetchError(error: Error): string {
  // Node's fetch says only "fetch failed" and keeps the real reason (ECONNREFUSED, ECONNRESET) in `cause`.
  const cause: unknown = error.cause;
  if (cause instanceof Error && cause.message) return `${error.message}: ${cause.message}`;
  return error.message;
}
