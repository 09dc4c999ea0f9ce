import type { FastifyError } from 'fastify';
import { KindlingError } from '../core/kindling-error.ts';
import { type AjvError, describeValidation } from './validation-message.ts';

/** Fastify's own errors (validation, JSON parsing, body size) as our typed errors, naming the field. */
export function fromFastifyError(error: unknown): KindlingError {
  if (error instanceof KindlingError) return error;
  if (!(error instanceof Error)) return new KindlingError('internal', `Internal error: ${String(error)}`);
  const fastifyError = error as FastifyError;
  if (fastifyError.validation && fastifyError.validation.length > 0) {
    const { field, message } = describeValidation(fastifyError.validation as AjvError[]);
    return KindlingError.badInput(field, message);
  }
  if (fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || fastifyError.statusCode === 413) {
    return new KindlingError(
      'payload_too_large',
      error.message.includes('MB') ? error.message : 'Payload is too big for this server (see --max-body-mb).',
    );
  }
  if (fastifyError.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
    return new KindlingError('bad_input', 'Unsupported content type: send JSON.');
  if (fastifyError.statusCode && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500)
    return new KindlingError('bad_input', error.message);
  return new KindlingError('internal', `Internal error: ${error.message}`);
}
