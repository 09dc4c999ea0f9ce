import type { KindlingError } from '../../core/kindling-error.ts';

/** OpenAI's envelope `{"error": {"message", "type", "param", "code"}}`. */
export function openaiErrorBody(error: KindlingError): Record<string, unknown> {
  const type =
    error.status === 401
      ? 'authentication_error'
      : error.status === 404
        ? 'not_found_error'
        : error.status === 503
          ? 'server_busy'
          : error.status < 500
            ? 'invalid_request_error'
            : 'server_error';
  return { error: { message: error.message, type, param: error.details.field ?? null, code: error.code } };
}
