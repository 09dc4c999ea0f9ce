import { KindlingError } from '../../core/kindling-error.ts';
import { JSON_OBJECT_GRAMMAR } from '../common/json-grammar.ts';
import { jsonSchemaGrammar } from '../common/json-schema-check.ts';
import type { ResponseFormat } from './wire.ts';

/**
 * `response_format` as a GBNF grammar, so the output is valid JSON by construction (not by asking nicely):
 * `json_object` → any JSON object, `json_schema` → llama.cpp's schema converter, `text` → no grammar.
 */
export async function responseFormatGrammar(
  format: ResponseFormat | null | undefined,
  jsonSchemaToGrammar: (schema: unknown) => Promise<string>,
): Promise<string | undefined> {
  if (!format || format.type === 'text') return undefined;
  if (format.type === 'json_object') return JSON_OBJECT_GRAMMAR;
  const schema = format.json_schema?.schema;
  if (!schema || typeof schema !== 'object')
    throw KindlingError.badInput('response_format.json_schema.schema', 'expected a JSON schema object');
  return jsonSchemaGrammar(schema, 'response_format.json_schema.schema', jsonSchemaToGrammar);
}
