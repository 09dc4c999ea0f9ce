/**
 * The hostile values route-fuzz-cases.ts fills bodies with. Values follow a JSON schema most of the time, so
 * most bodies pass validation and reach the code behind it; the fields that feed native code (grammars, JSON
 * schemas, logit_bias maps, stop lists, genkeys) get values of their own beyond their schema's type.
 */
import fc from 'fast-check';

export type JsonSchema = Record<string, unknown>;

const ODD_STRINGS = [
  '',
  ' ',
  '\u0000',
  '\ud800',
  '\udfff\ud800',
  '日本',
  'a\nb',
  '\r\n',
  '\t',
  '"',
  '\\',
  '{{',
  '%s%n%x',
  '<|im_end|>',
  '</s>',
  '<s>',
  '\u202e',
  '\ufeff',
  '🔥',
  '../../etc/passwd',
  '__proto__',
  'constructor',
  'NaN',
  'null',
];

export const oddString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 24 }) },
  { weight: 3, arbitrary: fc.constantFrom(...ODD_STRINGS) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 16 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 32 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 20_000 }).map((n) => 'x'.repeat(n)) },
);

export const hugeNumber: fc.Arbitrary<number> = fc.constantFrom(
  1e9,
  1e15,
  1e308,
  -1e308,
  4294967464,
  4294967296,
  2 ** 31,
  -(2 ** 31) - 1,
  2 ** 53 + 2,
  Number.MAX_SAFE_INTEGER,
  -1,
  -0,
  0,
  0.5,
  -0.5,
  1e-320,
);

/** Arrays nested `depth` deep: `[[[…]]]`. */
const nested = (depth: number): unknown => {
  let value: unknown = [];
  for (let i = 0; i < depth; i++) value = i % 2 ? { a: value } : [value];
  return value;
};

/** Any value of the wrong type for a field. */
export const wrongType: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  hugeNumber,
  oddString,
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: 5, max: 2000 }).map(nested),
);

/** GBNF grammars, valid and not: repeats with any bounds, empty classes, NULs, left recursion, undefined rules. */
export const grammarText: fc.Arbitrary<string> = (() => {
  const atom = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('"a"', '"b c"', '[a-z]', '[^\\n]', '.', 'x', 'root', '("a" | "b")') },
    { weight: 2, arbitrary: fc.string({ maxLength: 5 }).map((s) => JSON.stringify(s)) },
    { weight: 1, arbitrary: fc.constantFrom('[\\x00]', '[]', '"\\u0000"', '"', '(', ')', '|') },
  );
  const repeat = fc.oneof(
    fc.constantFrom('', '', '*', '+', '?', '{1000000}', '{,}', '{-1}', '{0}'),
    fc.tuple(fc.nat(12), fc.nat(12)).map(([a, b]) => `{${a},${b}}`),
    fc.nat(200).map((a) => `{${a}}`),
    fc.nat(9).map((a) => `{${a},}`),
  );
  const sequence = fc
    .array(fc.tuple(atom, repeat), { minLength: 1, maxLength: 6 })
    .map((parts) => parts.map(([a, r]) => a + r).join(' '));
  return fc.oneof(
    { weight: 4, arbitrary: sequence.map((s) => `root ::= ${s}`) },
    { weight: 2, arbitrary: fc.tuple(sequence, sequence).map(([a, b]) => `root ::= x ${b}\nx ::= ${a}`) },
    {
      weight: 1,
      arbitrary: fc.integer({ min: 1, max: 400 }).map((n) => `root ::= ${'('.repeat(n)}"a"${')'.repeat(n)}`),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom('root ::= root', 'root ::= root "a" | "b"', 'root ::= undefined', '::=', ''),
    },
    { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
  );
})();

/** JSON schemas, valid and not: unknown types, empty enums and unions, huge bounds, odd refs and patterns. */
export const jsonSchema: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  schema: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record(
      {
        type: fc.constantFrom('string', 'number', 'integer', 'boolean', 'null', 'object', 'array', 'foo', ''),
        minLength: fc.oneof(fc.nat(10), hugeNumber),
        maxLength: fc.oneof(fc.nat(10), hugeNumber),
        minItems: fc.oneof(fc.nat(5), hugeNumber),
        maxItems: fc.oneof(fc.nat(5), hugeNumber),
        minimum: hugeNumber,
        maximum: hugeNumber,
        pattern: fc.constantFrom('^a+$', '(', '[', '^(a|b){3,1}$', '.*', '\\d{1000000}'),
        items: tie('schema'),
        properties: fc.dictionary(oddString, tie('schema'), { maxKeys: 3 }),
        required: fc.array(oddString, { maxLength: 3 }),
        additionalProperties: fc.oneof(fc.boolean(), tie('schema')),
        $ref: fc.constantFrom('#', '#/definitions/x', '#/$defs/loop', 'http://example.com/s.json', ''),
        $defs: fc.record({ loop: fc.constant({ $ref: '#/$defs/loop' }) }),
      },
      { requiredKeys: [] },
    ),
    fc.record({ enum: fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 }) }),
    fc.record({ oneOf: fc.array(tie('schema'), { maxLength: 3 }) }),
    fc.record({ anyOf: fc.array(tie('schema'), { maxLength: 3 }) }),
    fc.record({ allOf: fc.array(tie('schema'), { maxLength: 3 }) }),
    fc.record({ const: fc.jsonValue({ maxDepth: 1 }) }),
    wrongType,
  ),
})).schema;

/** Fields that reach native code or headers get their own hostile values, beyond their schema's type. */
const FIELD_VALUES: Record<string, fc.Arbitrary<unknown>> = {
  grammar: grammarText,
  genkey: fc.oneof(fc.constantFrom('KCPP1234', 'K', 'a-b_c.d', ''), oddString),
  logit_bias: fc.oneof(
    fc.dictionary(
      fc.oneof(fc.nat(400).map(String), hugeNumber.map(String), oddString),
      fc.oneof(fc.double(), hugeNumber, fc.constant(-100)),
      { maxKeys: 4 },
    ),
    fc.array(fc.tuple(fc.oneof(fc.nat(400), hugeNumber), fc.double()), { maxLength: 3 }),
  ),
  stop_sequence: fc.oneof(fc.array(oddString, { maxLength: 8 }), fc.array(fc.constant('a'), { maxLength: 2000 })),
  stop: fc.oneof(fc.array(oddString, { maxLength: 8 }), oddString),
  stop_sequences: fc.array(oddString, { maxLength: 8 }),
  banned_tokens: fc.array(oddString, { maxLength: 8 }),
  dry_sequence_breakers: fc.oneof(fc.array(oddString, { maxLength: 8 }), oddString),
  json_schema: fc.record({ name: oddString, schema: jsonSchema }, { requiredKeys: [] }),
  schema: jsonSchema,
  format: fc.oneof(fc.constantFrom('json', '', 'yaml'), jsonSchema),
  rep_pen_range: fc.oneof(fc.nat(600), hugeNumber),
  dry_penalty_last_n: fc.oneof(fc.nat(600), hugeNumber),
  dry_allowed_length: fc.oneof(fc.nat(10), hugeNumber),
  top_k: fc.oneof(fc.nat(100), hugeNumber),
  n_probs: fc.oneof(fc.nat(10), hugeNumber),
  top_logprobs: fc.oneof(fc.nat(20), hugeNumber),
  logprobs: fc.oneof(fc.boolean(), fc.nat(20), hugeNumber),
  ids: fc.array(fc.oneof(fc.nat(300), hugeNumber), { maxLength: 20 }),
  context: fc.array(fc.oneof(fc.nat(300), hugeNumber), { maxLength: 20 }),
};

/** Values for a JSON schema, with any field sometimes replaced by a hostile value. */
export function fromSchema(schema: unknown, depth = 0, field?: string): fc.Arbitrary<unknown> {
  const special = field ? FIELD_VALUES[field] : undefined;
  const base = baseFromSchema(schema, depth);
  // A wrong type is rare per field, so that most bodies pass validation and reach the code behind it.
  const options = [
    { weight: 30, arbitrary: base },
    { weight: 1, arbitrary: wrongType },
  ];
  if (special) options.push({ weight: 30, arbitrary: special });
  return fc.oneof(...options);
}

function baseFromSchema(schema: unknown, depth: number): fc.Arbitrary<unknown> {
  if (!schema || typeof schema !== 'object' || depth > 4) return fc.jsonValue({ maxDepth: 2 });
  const s = schema as JsonSchema;
  let arbitrary: fc.Arbitrary<unknown>;
  const union = (s.anyOf ?? s.oneOf) as unknown[] | undefined;
  if (Array.isArray(s.enum) && s.enum.length > 0) arbitrary = fc.constantFrom(...s.enum);
  else if ('const' in s) arbitrary = fc.constant(s.const);
  else if (Array.isArray(union) && union.length > 0)
    arbitrary = fc.oneof(...union.map((option) => baseFromSchema(option, depth + 1)));
  else {
    switch (s.type) {
      case 'string':
        arbitrary = fc.oneof({ weight: 3, arbitrary: fc.lorem({ maxCount: 4 }) }, { weight: 1, arbitrary: oddString });
        break;
      case 'integer':
        arbitrary = fc.oneof(
          { weight: 3, arbitrary: fc.integer({ min: -2, max: 600 }) },
          { weight: 1, arbitrary: hugeNumber },
        );
        break;
      case 'number':
        arbitrary = fc.oneof(
          { weight: 3, arbitrary: fc.double({ min: -2, max: 4, noNaN: true }) },
          { weight: 1, arbitrary: hugeNumber },
        );
        break;
      case 'boolean':
        arbitrary = fc.boolean();
        break;
      case 'array':
        arbitrary = fc.array(fromSchema(s.items, depth + 1), { maxLength: 4 });
        break;
      case 'object': {
        const properties = (s.properties ?? {}) as Record<string, unknown>;
        const model: Record<string, fc.Arbitrary<unknown>> = {};
        for (const [name, property] of Object.entries(properties)) model[name] = fromSchema(property, depth + 1, name);
        const required = Array.isArray(s.required) ? (s.required as string[]) : [];
        const record = fc.record(model, { requiredKeys: required.filter((name) => name in model) });
        // Sometimes a field the schema does not know, sometimes a required one left out.
        arbitrary = fc
          .tuple(record, fc.dictionary(oddString, fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 }), fc.nat(9))
          .map(([known, extra, dice]) => {
            const out: Record<string, unknown> = dice === 0 ? { ...extra, ...known } : { ...known };
            if (dice === 1 && required[0]) delete out[required[0]];
            return out;
          });
        break;
      }
      default:
        arbitrary = fc.jsonValue({ maxDepth: 2 });
    }
  }
  return s.nullable === true ? fc.oneof(arbitrary, fc.constant(null)) : arbitrary;
}
