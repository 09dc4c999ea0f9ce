import { KindlingError } from '../../core/kindling-error.ts';
import { jsonSchemaGrammar } from './json-schema-check.ts';

/**
 * KoboldCpp's `grammar` field also takes a JSON schema written as a string, converted to GBNF. A GBNF grammar
 * never starts with `{` (it starts with a rule name or a `#` comment), so a text that does is read as a schema.
 * Returns the body with that grammar converted (and checked); any other body is returned as it is, for
 * `decodeSampling` to check as GBNF.
 */
export async function withSchemaGrammar<T>(body: T, convert: (schema: unknown) => Promise<string>): Promise<T> {
  const grammar = (body as { grammar?: unknown } | undefined)?.grammar;
  if (typeof grammar !== 'string' || !grammar.trimStart().startsWith('{')) return body;
  let schema: unknown;
  try {
    schema = JSON.parse(grammar);
  } catch (error) {
    throw KindlingError.badInput(
      'grammar',
      `starts with { but is not a JSON schema (${error instanceof Error ? error.message : error}); a GBNF grammar starts with a rule, e.g. root ::= "yes" | "no"`,
    );
  }
  return { ...body, grammar: await jsonSchemaGrammar(schema, 'grammar', convert) };
}
