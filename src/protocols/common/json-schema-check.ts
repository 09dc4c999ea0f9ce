import { checkGbnf } from '../../core/gbnf-check.ts';
import { KindlingError } from '../../core/kindling-error.ts';
import { isObject, measure, SchemaError } from './json-schema-limits.ts';
import { type Schema, SchemaNormalizer } from './json-schema-normalizer.ts';

/**
 * A client's JSON schema, checked and rewritten into the dialect of node-llama-cpp's schema → grammar converter
 * before it is converted, so a bad schema is a 400 naming its JSON path instead of a grammar that silently forces
 * `null` (the converter turns anything it does not recognise, `{"type":"foo"}` and `{}` included, into `null`) or
 * an empty string (an unknown `format`), or a grammar too large for llama.cpp.
 *
 * Rewrites: `anyOf` → `oneOf`, a one-element `allOf` → its element, `definitions` → `$defs`, `type` lists that
 * name `object` or `array` → `oneOf` per type, `nullable: true` → `null` added to the types, a schema without a
 * type → the type its keywords imply (`properties` → object, `items` → array, `minLength` → string) or any JSON
 * value, `true` → any JSON value, tuple `items: [...]` → `prefixItems`, unknown `format`s → none.
 * Keywords the converter cannot enforce (`pattern`, `minimum`, `maximum`, `multipleOf`, `uniqueItems`, `not`, …)
 * are ignored, as annotations are; `required` is implied: every listed property is generated.
 */

/**
 * Checks `schema` (400 for `field` naming the JSON path of the first problem) and returns it in the converter's
 * dialect. Always ends quickly: the walk is bounded by the limits of json-schema-limits.ts before it recurses.
 */
export function checkJsonSchema(schema: unknown, field: string): Schema {
  try {
    if (!isObject(schema))
      throw new SchemaError(
        `expected a JSON schema object, got ${schema === undefined ? 'nothing' : schema === null ? 'null' : Array.isArray(schema) ? 'an array' : typeof schema}`,
      );
    measure(schema);
    return new SchemaNormalizer(schema).run();
  } catch (error) {
    if (error instanceof SchemaError) throw KindlingError.badInput(field, error.message);
    throw error;
  }
}

/**
 * The schema as a grammar: checked, converted by `convert` (the engine's converter), and the grammar checked
 * again, so nothing the converter emits reaches llama.cpp unchecked.
 */
export async function jsonSchemaGrammar(
  schema: unknown,
  field: string,
  convert: (schema: unknown) => Promise<string>,
): Promise<string> {
  const normalized = checkJsonSchema(schema, field);
  let grammar: string;
  try {
    grammar = await convert(normalized);
  } catch (error) {
    const message = error instanceof Error ? error.message.replace(/^schema: /, '') : String(error);
    throw KindlingError.badInput(field, message);
  }
  checkGbnf(grammar, field);
  return grammar;
}
