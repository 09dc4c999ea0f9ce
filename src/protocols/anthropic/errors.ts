import type { KindlingError } from '../../core/kindling-error.ts';

/** Anthropic's envelope `{"type": "error", "error": {"type", "message"}}`. */
export function anthropicErrorBody(error: KindlingError): Record<string, unknown> {
  return { type: 'error', error: { type: anthropicErrorType(error.status), message: error.message } };
}

export function anthropicErrorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 413) return 'request_too_large';
  if (status === 429) return 'rate_limit_error';
  if (status === 503) return 'overloaded_error';
  if (status < 500) return 'invalid_request_error';
  return 'api_error';
}
