import type { KindlingError } from '../core/kindling-error.ts';
import { anthropicErrorBody } from '../protocols/anthropic/errors.ts';
import { koboldErrorBody } from '../protocols/kobold/errors.ts';
import { ollamaErrorBody } from '../protocols/ollama/errors.ts';
import { openaiErrorBody } from '../protocols/openai/errors.ts';

const OLLAMA_PATHS = [
  '/api/generate',
  '/api/chat',
  '/api/tags',
  '/api/show',
  '/api/version',
  '/api/ps',
  '/api/embed',
  '/api/embeddings',
];

/** Each protocol answers errors in its own envelope; the path says which protocol a request speaks. */
export function errorEnvelope(url: string, error: KindlingError): Record<string, unknown> {
  const path = url.split('?')[0]?.replace(/\/+$/, '') ?? '';
  if (path.startsWith('/v1/messages')) return anthropicErrorBody(error);
  if (path.startsWith('/v1/') || path === '/v1') return openaiErrorBody(error);
  if (OLLAMA_PATHS.includes(path)) return ollamaErrorBody(error);
  return koboldErrorBody(error);
}
