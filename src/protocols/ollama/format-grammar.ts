import { KindlingError } from '../../core/kindling-error.ts';
import { JSON_OBJECT_GRAMMAR } from '../common/json-grammar.ts';
import { jsonSchemaGrammar } from '../common/json-schema-check.ts';

/** Ollama `format`: `"json"` → any JSON object, a schema object → llama.cpp's converter, absent/"" → none. */
export async function formatGrammar(
  format: unknown,
  jsonSchemaToGrammar: (schema: unknown) => Promise<string>,
): Promise<string | undefined> {
  if (format === undefined || format === null || format === '') return undefined;
  if (format === 'json') return JSON_OBJECT_GRAMMAR;
  if (typeof format !== 'object' || Array.isArray(format))
    throw KindlingError.badInput('format', 'expected "json" or a JSON schema object');
  return jsonSchemaGrammar(format, 'format', jsonSchemaToGrammar);
}
