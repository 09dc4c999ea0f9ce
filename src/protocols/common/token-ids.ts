import { KindlingError } from '../../core/kindling-error.ts';

/** Token ids a client sent (a prompt, Ollama's `context`, detokenize's `ids`) must name tokens of the model. */
export function checkTokenIds(field: string, ids: readonly number[], vocabularySize: number): void {
  const bad = ids.find((id) => id >= vocabularySize);
  if (bad !== undefined)
    throw KindlingError.badInput(field, `token id ${bad} is outside the vocabulary (0..${vocabularySize - 1})`);
}
