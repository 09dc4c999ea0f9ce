import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { KindlingError } from '../../src/core/kindling-error.ts';
import { checkJsonSchema, jsonSchemaGrammar } from '../../src/protocols/common/json-schema-check.ts';
import {
  JSON_SCHEMA_MAX_COUNT,
  JSON_SCHEMA_MAX_DEPTH,
  JSON_SCHEMA_MAX_NODES,
  JSON_SCHEMA_MAX_TOTAL_COUNT,
} from '../../src/protocols/common/json-schema-limits.ts';
import { jsonSchemaLike as schemaLike } from '../support/gbnf-arbitraries.ts';

function rejects(schema: unknown, ...fragments: string[]): void {
  let error: unknown;
  try {
    checkJsonSchema(schema, 'format');
  } catch (e) {
    error = e;
  }
  if (!(error instanceof KindlingError)) assert.fail(`expected a rejection, got ${error}`);
  assert.equal(error.status, 400);
  assert.equal(error.details.field, 'format');
  for (const fragment of fragments) assert.ok(error.message.includes(fragment), `${error.message} lacks ${fragment}`);
}

test('the issue’s invalid schemas and non-object bodies are refused, naming the JSON path', () => {
  rejects({ type: 'foo' }, '$.type', 'unknown type "foo"');
  rejects({ enum: [] }, '$.enum', 'non-empty');
  rejects({ oneOf: [] }, '$.oneOf', 'non-empty');
  rejects({ anyOf: [] }, '$.anyOf', 'non-empty');
  rejects({ allOf: [] }, '$.allOf', 'non-empty');
  for (const body of [123, 's', true, null, [], undefined]) rejects(body, 'expected a JSON schema object');
});

test('nested problems are named by their path', () => {
  rejects({ type: 'object', properties: { a: { type: ['string', 'strin'] } } }, '$.properties.a.type[1]', '"strin"');
  rejects({ type: 'array', items: { type: 'object', properties: { 'a b': false } } }, '$.items.properties["a b"]');
  rejects({ type: 'array', minItems: 5, maxItems: 2 }, '$.minItems', 'above maxItems');
  rejects({ type: 'string', minLength: 9, maxLength: 3 }, '$.minLength');
  rejects({ type: 'object', minProperties: 3, maxProperties: 1, additionalProperties: true }, '$.minProperties');
  rejects({ type: 'array', maxItems: -1 }, '$.maxItems', 'whole number');
  rejects({ type: 'array', maxItems: 1.5 }, '$.maxItems', 'whole number');
  rejects({ type: 'array', maxItems: '3' }, '$.maxItems', 'whole number');
  rejects({ type: 'array', prefixItems: [{ type: 'string' }, { type: 'string' }], maxItems: 1 }, '$.maxItems');
  rejects({ type: 'object', properties: { a: {}, b: {} }, maxProperties: 1 }, '$.maxProperties');
  rejects({ type: 'object', properties: { a: { type: 'string' } }, minProperties: 2 }, '$.minProperties');
  rejects({ oneOf: [{ type: 'string' }], anyOf: [{ type: 'number' }] }, 'oneOf and anyOf');
  rejects({ allOf: [{ type: 'string' }, { maxLength: 3 }] }, '$.allOf', 'one element');
  rejects({ const: { a: 1 } }, '$.const', 'an object is not supported');
  rejects({ enum: ['a', [1]] }, '$.enum[1]', 'an array is not supported');
  rejects({ enum: ['a\u0000'] }, '$.enum[0]', 'NUL');
  rejects({ type: 'object', properties: { 'x\u0000': { type: 'string' } } }, 'NUL');
});

test('references must resolve, point at a whole definition, and not loop without consuming input', () => {
  rejects({ $ref: '#/$defs/missing' }, '$.$ref', 'names no definition');
  rejects({ $ref: '#' }, '$.$ref', 'not supported');
  rejects({ $ref: 'https://example.com/schema.json' }, '$.$ref', 'not supported');
  rejects({ $ref: '#/$defs/a/properties/b', $defs: { a: {} } }, 'whole definition');
  rejects({ $ref: 7 }, '$.$ref', 'expected a string');
  rejects({ $ref: '#/$defs/a', $defs: { a: { $ref: '#/$defs/a' } } }, '$.$defs.a', '$ref cycle a → a');
  rejects(
    { $ref: '#/$defs/a', $defs: { a: { $ref: '#/$defs/b' }, b: { oneOf: [{ $ref: '#/$defs/a' }, { type: 'null' }] } } },
    '$ref cycle a → b → a',
  );
  // Unused definitions are checked too.
  rejects({ type: 'string', $defs: { unused: { type: 'nope' } } }, '$.$defs.unused.type');
  // Recursion through an object or array is fine (it consumes input).
  const tree = checkJsonSchema(
    {
      $ref: '#/$defs/node',
      $defs: {
        node: {
          type: 'object',
          properties: { children: { type: 'array', items: { $ref: '#/$defs/node' }, maxItems: 3 } },
        },
      },
    },
    'format',
  );
  assert.equal(tree.$ref, '#/$defs/node');
});

test('limits on counts, depth, size and nodes', () => {
  rejects({ type: 'string', maxLength: JSON_SCHEMA_MAX_COUNT + 1 }, '$.maxLength', `limit of ${JSON_SCHEMA_MAX_COUNT}`);
  rejects({ type: 'array', minItems: 1e9 }, '$.minItems', 'limit');
  const wide = Object.fromEntries(
    Array.from({ length: 20 }, (_, i) => [`p${i}`, { type: 'string', maxLength: JSON_SCHEMA_MAX_COUNT }]),
  );
  rejects({ type: 'object', properties: wide }, `more than ${JSON_SCHEMA_MAX_TOTAL_COUNT}`);
  let deep: Record<string, unknown> = { type: 'string' };
  for (let i = 0; i < JSON_SCHEMA_MAX_DEPTH + 2; i++) deep = { type: 'object', properties: { a: deep } };
  rejects(deep, 'nests deeper');
  rejects(
    { enum: Array.from({ length: JSON_SCHEMA_MAX_NODES + 1 }, (_, i) => i) },
    `more than ${JSON_SCHEMA_MAX_NODES}`,
  );
  rejects({ const: 'x'.repeat(200_000) }, 'characters of text');
  // Very deep raw JSON is refused by the iterative size walk, before anything recurses.
  let raw: unknown = 1;
  for (let i = 0; i < 100_000; i++) raw = [raw];
  rejects({ const: raw }, 'nests deeper');
});

test('schemas the converter would turn into "null" or "" are rewritten into what they mean', () => {
  const any = checkJsonSchema({}, 'format');
  assert.ok(Array.isArray(any.oneOf), 'an empty schema is any JSON value');
  assert.deepEqual(checkJsonSchema({ anyOf: [{ type: 'string' }, { type: 'number' }] }, 'format'), {
    oneOf: [{ type: 'string' }, { type: 'number' }],
  });
  assert.deepEqual(checkJsonSchema({ type: 'string', format: 'email' }, 'format'), { type: 'string' });
  assert.deepEqual(checkJsonSchema({ type: 'string', format: 'date' }, 'format'), { type: 'string', format: 'date' });
  assert.deepEqual(checkJsonSchema({ type: ['object', 'null'] }, 'format'), {
    oneOf: [{ type: 'object' }, { type: 'null' }],
  });
  assert.deepEqual(checkJsonSchema({ type: ['string', 'null'] }, 'format'), { type: ['string', 'null'] });
  assert.deepEqual(checkJsonSchema({ type: 'integer', nullable: true }, 'format'), { type: ['integer', 'null'] });
  assert.deepEqual(checkJsonSchema({ properties: { a: { type: 'boolean' } } }, 'format'), {
    type: 'object',
    properties: { a: { type: 'boolean' } },
  });
  assert.deepEqual(checkJsonSchema({ items: [{ type: 'string' }], additionalItems: false }, 'format'), {
    type: 'array',
    prefixItems: [{ type: 'string' }],
    maxItems: 1,
  });
  assert.deepEqual(
    checkJsonSchema({ allOf: [{ $ref: '#/definitions/X' }], definitions: { X: { type: 'integer' } } }, 'format'),
    { $ref: '#/$defs/X', $defs: { X: { type: 'integer' } } },
  );
});

test('the converted grammar is checked too, and converter errors are the field’s 400', async () => {
  const grammar = await jsonSchemaGrammar({ type: 'string' }, 'format', async () => 'root ::= "\\"" [a-z]* "\\""');
  assert.match(grammar, /root ::=/);
  await assert.rejects(
    jsonSchemaGrammar({ type: 'string' }, 'format', async () => 'root ::= "a"{3,1}'),
    (error: unknown) => error instanceof KindlingError && error.status === 400 && error.details.field === 'format',
  );
  await assert.rejects(
    jsonSchemaGrammar({ type: 'string' }, 'format', async () => {
      throw new Error('boom');
    }),
    (error: unknown) => error instanceof KindlingError && error.message === 'format: boom',
  );
});

test('property: any JSON value is either a checked schema or a 400, quickly', () => {
  fc.assert(
    fc.property(schemaLike, (schema) => {
      const start = performance.now();
      try {
        checkJsonSchema(schema, 'format');
      } catch (error) {
        if (!(error instanceof KindlingError) || error.status !== 400) throw error;
      }
      assert.ok(performance.now() - start < 1000);
    }),
    { seed: 16, numRuns: 500 },
  );
});
