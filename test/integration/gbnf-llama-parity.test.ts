import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { getLlama, type Llama, LlamaLogLevel } from 'node-llama-cpp';
import { checkGbnf } from '../../src/core/gbnf-check.ts';
import { KindlingError } from '../../src/core/kindling-error.ts';
import { JSON_OBJECT_GRAMMAR } from '../../src/protocols/common/json-grammar.ts';
import { checkJsonSchema } from '../../src/protocols/common/json-schema-check.ts';
import { jsonSchemaLike, validGrammarText } from '../support/gbnf-arbitraries.ts';

/**
 * Our GBNF check against llama.cpp's own parser (node-llama-cpp's binding, no model needed): whatever we accept,
 * llama.cpp accepts, so an accepted grammar never fails after the request was submitted; and the refusals we
 * describe as llama.cpp's own really are refused there. Only texts that are safe for llama.cpp reach it.
 */
let llama: Llama;
before(async () => {
  llama = await getLlama({ gpu: false, logLevel: LlamaLogLevel.disabled, progressLogs: false });
});
after(async () => llama.dispose());

const llamaAccepts = async (grammar: string): Promise<boolean> => {
  try {
    await llama.createGrammar({ grammar });
    return true;
  } catch {
    return false;
  }
};

test('every grammar we accept, llama.cpp accepts: bundled grammars, ours, and generated ones', async () => {
  const dir = join(import.meta.dirname, '../../node_modules/node-llama-cpp/llama/grammars');
  const texts = readdirSync(dir)
    .filter((name) => name.endsWith('.gbnf'))
    .map((name) => readFileSync(join(dir, name), 'utf8'));
  texts.push(JSON_OBJECT_GRAMMAR, 'root ::= (ws)* "x"\nws ::= " "?', 'root ::= <[12]> !<[3]> "x"');
  texts.push(...fc.sample(validGrammarText, { seed: 21, numRuns: 150 }));
  let checked = 0;
  for (const text of texts) {
    try {
      checkGbnf(text);
    } catch (error) {
      if (error instanceof KindlingError && error.message.includes('too ambiguous')) continue;
      throw error;
    }
    checked++;
    assert.ok(await llamaAccepts(text), `llama.cpp refused a grammar we accept: ${JSON.stringify(text)}`);
  }
  assert.ok(checked > 120, `only ${checked} grammars compared`);
});

test('what we refuse as llama.cpp’s own error, llama.cpp refuses too', async () => {
  const refusedThere = [
    'root ::= "a',
    'root ::= "\\q"',
    'root ::= greeting',
    'start ::= "a"',
    'root ::= root "a" | "b"',
    'root ::= "a"?* "b"',
    'root ::= x* "b"\nx ::= "a" | "c"{0}',
    'root ::= <think>',
    'root ::= "a"\n| "b"',
    'root ::= ("a"{0,999}){0,999}',
    'root ::= "a"{2000}',
    'root ::= *',
  ];
  for (const text of refusedThere) {
    assert.throws(() => checkGbnf(text), KindlingError, text);
    assert.equal(await llamaAccepts(text), false, `llama.cpp accepted ${JSON.stringify(text)}`);
  }
});

test('grammars the converter emits for a range of schemas pass the check and compile', async () => {
  const schemas: unknown[] = [
    {},
    { type: 'string' },
    { type: 'string', minLength: 2, maxLength: 40 },
    { type: 'string', format: 'date-time' },
    { type: 'string', format: 'uri' },
    { type: 'integer' },
    { type: ['number', 'null'] },
    { type: 'boolean' },
    { enum: ['red', 'green', 'blue', 3, null] },
    { const: 'exactly this' },
    { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'integer' }, maxItems: 5 }] },
    { type: 'array', prefixItems: [{ type: 'string' }, { type: 'number' }], minItems: 2, maxItems: 6 },
    { type: 'array', items: { type: 'string' }, minItems: 3 },
    { type: 'object', additionalProperties: { type: 'integer' }, maxProperties: 4 },
    {
      type: 'object',
      properties: {
        name: { type: 'string', description: 'who' },
        age: { type: 'integer', minimum: 0 },
        tags: { type: 'array', items: { type: 'string', maxLength: 20 }, maxItems: 10 },
        address: { $ref: '#/$defs/address' },
      },
      required: ['name'],
      $defs: {
        address: { type: 'object', properties: { street: { type: 'string' }, zip: { type: ['string', 'null'] } } },
      },
    },
    {
      $ref: '#/definitions/node',
      definitions: {
        node: {
          type: 'object',
          properties: {
            value: { type: 'integer' },
            next: { anyOf: [{ $ref: '#/definitions/node' }, { type: 'null' }] },
          },
        },
      },
    },
  ];
  for (const schema of schemas) {
    const normalized = checkJsonSchema(schema, 'schema');
    const grammar = (await llama.createGrammarForJsonSchema(normalized as never)).grammar;
    checkGbnf(grammar, 'schema');
    assert.ok(await llamaAccepts(grammar), JSON.stringify(schema));
    assert.doesNotMatch(grammar, /^root ::= null-rule/m, `${JSON.stringify(schema)} became a grammar forcing null`);
  }
});

test('property: every generated schema the check passes converts, and its grammar passes the check and compiles', async () => {
  let converted = 0;
  for (const schema of fc.sample(jsonSchemaLike, { seed: 22, numRuns: 300 })) {
    let normalized: unknown;
    try {
      normalized = checkJsonSchema(schema, 'schema');
    } catch (error) {
      if (error instanceof KindlingError && error.status === 400) continue;
      throw error;
    }
    const grammar = (await llama.createGrammarForJsonSchema(normalized as never)).grammar;
    try {
      checkGbnf(grammar, 'schema');
    } catch (error) {
      // A schema may be as ambiguous as a grammar can be; nothing else may fail.
      if (!(error instanceof KindlingError && error.message.includes('too ambiguous'))) throw error;
    }
    converted++;
  }
  assert.ok(converted > 30, `only ${converted} schemas converted`);
});
