import type { KindlingError } from '../../core/kindling-error.ts';

/** Ollama's envelope `{"error": "<message>"}`. */
export function ollamaErrorBody(error: KindlingError): Record<string, unknown> {
  return { error: error.message };
}
