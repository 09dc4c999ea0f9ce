import type { KindlingError } from '../../core/kindling-error.ts';

/** KoboldCpp's envelope `{"detail": {"msg", "type"}}`; 401 adds `"error": "Unauthorized"` as KoboldCpp does. */
export function koboldErrorBody(error: KindlingError): Record<string, unknown> {
  const detail: Record<string, unknown> = { msg: error.message, type: koboldErrorType(error) };
  if (error.code === 'unauthorized') detail.error = 'Unauthorized';
  if (error.details.field) detail.field = error.details.field;
  return { detail };
}

function koboldErrorType(error: KindlingError): string {
  switch (error.code) {
    case 'queue_full':
    case 'shutting_down':
    case 'unavailable':
      return 'service_unavailable';
    case 'unauthorized':
      return 'unauthorized';
    case 'bad_input':
    case 'payload_too_large':
    case 'not_supported':
      return 'bad_input';
    default:
      return error.code;
  }
}
