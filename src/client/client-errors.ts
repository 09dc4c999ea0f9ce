import type { GenerationResult } from './client-types.ts';

/**
 * Every error the SDK throws is one of these classes, so callers branch with `instanceof` (or `error.kind`
 * where several copies of the SDK may be loaded) instead of matching message text.
 */
export type ClientErrorKind =
  | 'network'
  | 'heartbeat-timeout'
  | 'http-status'
  | 'provider-stream'
  | 'protocol'
  | 'aborted';

export class KindlingClientError extends Error {
  readonly kind: ClientErrorKind;
  /** Whether sending the request again may succeed. */
  readonly retryable: boolean;
  /** For errors that end a stream: what had been generated before it, so a caller can keep partial text. */
  partial: GenerationResult | undefined;

  constructor(kind: ClientErrorKind, message: string, options: { retryable: boolean; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.kind = kind;
    this.retryable = options.retryable;
  }
}

/** The connection failed or was cut (refused, reset, DNS, a body that ended early). Retryable. */
export class NetworkError extends KindlingClientError {
  constructor(message: string, cause?: unknown, kind: ClientErrorKind = 'network') {
    super(kind, message, { retryable: true, cause });
  }
}

/**
 * Nothing listens at the server's address (ECONNREFUSED before any byte was exchanged). On a first connect this
 * means no server is running, and the SDK says so at once instead of retrying; a stream that had already
 * reached the server keeps reconnecting through it, since a restarting server refuses for a moment.
 */
export class ConnectionRefusedError extends NetworkError {
  /** The origin that refused, e.g. `http://127.0.0.1:5001`; with several base URLs, all of them, comma-separated. */
  readonly origin: string;
  /** Each origin that refused (one unless the client has several base URLs and all of them refused). */
  readonly origins: readonly string[];
  constructor(origin: string, cause?: unknown, origins: readonly string[] = [origin]) {
    super(`connection refused: nothing is listening at ${origin}`, cause);
    this.origin = origin;
    this.origins = origins;
  }
}

/** No byte arrived for `timeoutMs`: the server or a proxy went silent. Treated like a cut connection. */
export class HeartbeatTimeoutError extends NetworkError {
  readonly timeoutMs: number;
  constructor(timeoutMs: number) {
    super(`no data from the server for ${timeoutMs} ms`, undefined, 'heartbeat-timeout');
    this.timeoutMs = timeoutMs;
  }
}

/** Statuses worth sending again: timeout, conflict (a key still held), rate limit, server errors. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

/** The server answered with a non-2xx status. `providerMessage` is the message from its error envelope. */
export class HttpStatusError extends KindlingClientError {
  readonly status: number;
  readonly providerMessage: string | undefined;
  /** The provider's error type/code (`rate_limit_error`, `service_unavailable`, …) when it sent one. */
  readonly providerType: string | undefined;
  /** From `retry-after-ms` / `retry-after`, when present. */
  readonly retryAfterMs: number | undefined;
  readonly body: unknown;

  constructor(init: {
    status: number;
    statusText?: string;
    providerMessage?: string | undefined;
    providerType?: string | undefined;
    retryAfterMs?: number | undefined;
    body?: unknown;
    retryable?: boolean;
  }) {
    const what = init.providerMessage ?? init.statusText ?? '';
    super('http-status', `HTTP ${init.status}${what ? `: ${what}` : ''}`, {
      retryable: init.retryable ?? isRetryableStatus(init.status),
    });
    this.status = init.status;
    this.providerMessage = init.providerMessage;
    this.providerType = init.providerType;
    this.retryAfterMs = init.retryAfterMs;
    this.body = init.body;
  }
}

/**
 * The provider reported an error inside a stream that had started with 200 (OpenRouter's
 * `data: {"error":…}`, Anthropic's `event: error`, Ollama's `{"error":…}` line). `partial` holds the text
 * received before it.
 */
export class ProviderStreamError extends KindlingClientError {
  readonly providerMessage: string;
  readonly providerType: string | undefined;
  readonly code: string | number | undefined;
  readonly raw: unknown;

  constructor(init: {
    message: string;
    type?: string | undefined;
    code?: string | number | undefined;
    raw?: unknown;
    retryable?: boolean;
  }) {
    super('provider-stream', `provider error${init.type ? ` (${init.type})` : ''}: ${init.message}`, {
      retryable: init.retryable ?? false,
    });
    this.providerMessage = init.message;
    this.providerType = init.type;
    this.code = init.code;
    this.raw = init.raw;
  }
}

/** The server sent something that breaks its own protocol (bad JSON, wrong content type, a missing field). */
export class ProtocolError extends KindlingClientError {
  constructor(message: string, cause?: unknown) {
    super('protocol', message, { retryable: false, cause });
  }
}

/** The caller aborted. `partial` holds the text received before the abort. Never retried. */
export class AbortedError extends KindlingClientError {
  constructor(partial?: GenerationResult, cause?: unknown) {
    super('aborted', 'generation aborted', { retryable: false, cause });
    this.partial = partial;
  }
}
