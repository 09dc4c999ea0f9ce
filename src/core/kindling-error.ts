/**
 * The one error type that crosses layer boundaries. `code` is stable for programs; `message` tells a
 * user what to do; `status` is the HTTP status every protocol uses (each wraps it in its own envelope).
 */
export type ErrorCode =
  | 'bad_input'
  | 'payload_too_large'
  | 'not_found'
  | 'unauthorized'
  /** A valid key that may not do this (an admin-only route). */
  | 'forbidden'
  | 'conflict'
  | 'rate_limited'
  | 'queue_full'
  /** The server is draining for shutdown: nothing new is admitted, and work cut at the grace's end fails. */
  | 'shutting_down'
  /** A service the server needs is unreachable (a fleet's Redis): retry later, the message names it. */
  | 'unavailable'
  | 'timeout'
  | 'not_supported'
  /** A route this server cannot answer in its configuration (a tokenizer route over an upstream that has none). */
  | 'not_implemented'
  | 'model_error'
  | 'internal';

const STATUS: Record<ErrorCode, number> = {
  bad_input: 400,
  payload_too_large: 413,
  not_found: 404,
  unauthorized: 401,
  forbidden: 403,
  conflict: 409,
  rate_limited: 429,
  queue_full: 503,
  shutting_down: 503,
  unavailable: 503,
  timeout: 504,
  not_supported: 400,
  not_implemented: 501,
  model_error: 500,
  internal: 500,
};

export class KindlingError extends Error {
  override readonly name = 'KindlingError';
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: { field?: string; retryAfterSeconds?: number } = {},
  ) {
    super(message);
    this.status = STATUS[code];
  }

  static badInput(field: string, message: string): KindlingError {
    return new KindlingError('bad_input', `${field}: ${message}`, { field });
  }

  /** Every protocol's stream and response says this when shutdown cuts a request: never a normal ending. */
  static shuttingDown(detail?: string): KindlingError {
    return new KindlingError('shutting_down', detail ? `server shutting down: ${detail}` : 'server shutting down', {
      retryAfterSeconds: 5,
    });
  }
}

export function toKindlingError(error: unknown): KindlingError {
  if (error instanceof KindlingError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new KindlingError('internal', message);
}
