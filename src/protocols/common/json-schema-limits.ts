import { GBNF_MAX_REPEAT, GBNF_MAX_RULES } from '../../core/gbnf-check.ts';

/**
 * What a client's JSON schema may hold before anything recurses into it, and the walk that measures it: the
 * limits keep the check (json-schema-check.ts) and the grammar the converter makes from the schema bounded.
 */

/** Deepest nesting of subschemas. */
export const JSON_SCHEMA_MAX_DEPTH = 64;
/** Most subschemas (and JSON values inside `enum`/`const`) in one schema. */
export const JSON_SCHEMA_MAX_NODES = 5000;
/** Most characters of text (keys and string values) in one schema. */
export const JSON_SCHEMA_MAX_CHARS = 100_000;
/** Largest `minItems`/`maxItems`/`minLength`/`maxLength`/`minProperties`/`maxProperties`. */
export const JSON_SCHEMA_MAX_COUNT = GBNF_MAX_REPEAT;
/** Most of those counts added up over the whole schema (each count becomes that many grammar rules). */
export const JSON_SCHEMA_MAX_TOTAL_COUNT = GBNF_MAX_RULES / 2;

/** A problem with the schema at a JSON path: json-schema-check.ts turns it into a 400. */
export class SchemaError extends Error {}

export const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

export const pathKey = (path: string, key: string | number): string =>
  typeof key === 'number'
    ? `${path}[${key}]`
    : /^[A-Za-z_$][\w$]*$/.test(key)
      ? `${path}.${key}`
      : `${path}[${JSON.stringify(key)}]`;

export /** Size, depth and text limits over the raw JSON, iteratively, before anything recurses into it. */
function measure(root: unknown): void {
  let nodes = 0;
  let chars = 0;
  const todo: [value: unknown, depth: number, path: string][] = [[root, 0, '$']];
  while (todo.length > 0) {
    const [value, depth, path] = todo.pop() as [unknown, number, string];
    if (++nodes > JSON_SCHEMA_MAX_NODES)
      throw new SchemaError(`the schema has more than ${JSON_SCHEMA_MAX_NODES} values; simplify it`);
    // Two JSON levels (`properties` → name) per schema level.
    if (depth > JSON_SCHEMA_MAX_DEPTH * 2)
      throw new SchemaError(`${path}: the schema nests deeper than ${JSON_SCHEMA_MAX_DEPTH} levels`);
    if (typeof value === 'string') chars += value.length;
    else if (Array.isArray(value))
      for (let i = 0; i < value.length; i++) todo.push([value[i], depth + 1, pathKey(path, i)]);
    else if (isObject(value))
      for (const [key, item] of Object.entries(value)) {
        chars += key.length;
        todo.push([item, depth + 1, pathKey(path, key)]);
      }
    if (chars > JSON_SCHEMA_MAX_CHARS)
      throw new SchemaError(`the schema holds more than ${JSON_SCHEMA_MAX_CHARS} characters of text`);
  }
}
