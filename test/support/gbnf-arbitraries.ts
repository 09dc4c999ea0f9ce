import fc from 'fast-check';

/**
 * Grammar-like texts for property tests: valid GBNF and near misses, built from GBNF's own pieces (literals with
 * escapes, classes, references, groups, every repeat form, tokens) with stray syntax mixed in.
 */
export const grammarText: fc.Arbitrary<string> = (() => {
  const name = fc.constantFrom('root', 'a', 'b', 'item', 'ws', 'x-1', 'undefined-rule');
  const char = fc.constantFrom(
    'a',
    'b',
    ' ',
    '\\n',
    '\\x00',
    '\\x41',
    '\\u00e9',
    '\\U0001F600',
    '\\"',
    '\\q',
    'é',
    '-',
    ']',
  );
  const literal = fc.array(char, { maxLength: 4 }).map((cs) => `"${cs.join('')}"`);
  const klass = fc
    .tuple(
      fc.boolean(),
      fc.array(
        fc.oneof(
          char,
          fc.tuple(char, char).map(([a, b]) => `${a}-${b}`),
        ),
        { maxLength: 3 },
      ),
    )
    .map(([neg, items]) => `[${neg ? '^' : ''}${items.join('')}]`);
  const repeat = fc.oneof(
    fc.constantFrom('', '', '*', '+', '?'),
    fc.tuple(fc.nat(1200), fc.option(fc.nat(1200))).map(([m, n]) => (n === null ? `{${m}}` : `{${m},${n}}`)),
    fc.nat(30).map((m) => `{${m},}`),
  );
  const { item } = fc.letrec<{ item: string; seq: string; alts: string }>((tie) => ({
    item: fc.oneof(
      { depthSize: 'small' },
      fc.tuple(fc.oneof(literal, klass, name, fc.constant('.'), fc.constant('<[5]>')), repeat).map(([a, r]) => a + r),
      fc.tuple(tie('alts'), repeat).map(([a, r]) => `(${a})${r}`),
    ),
    seq: fc.array(tie('item'), { minLength: 1, maxLength: 4 }).map((items) => items.join(' ')),
    alts: fc.array(tie('seq'), { minLength: 1, maxLength: 3 }).map((seqs) => seqs.join(' | ')),
  }));
  const rule = fc
    .tuple(name, fc.array(item, { minLength: 1, maxLength: 4 }))
    .map(([n, items]) => `${n} ::= ${items.join(' ')}`);
  const noise = fc.constantFrom('', '', '', ' # c', '\n', ')', '|', '{', '::=');
  return fc
    .tuple(
      fc.array(
        fc.tuple(rule, noise).map(([r, n]) => r + n),
        { minLength: 1, maxLength: 5 },
      ),
      fc.boolean(),
    )
    .map(([rules, withRoot]) =>
      (withRoot ? ['root ::= a | b', 'a ::= "a"', 'b ::= [b-z]+', ...rules] : rules).join('\n'),
    );
})();

/** Grammars that are valid by construction (every rule defined, no left recursion, bounded repeats). */
export const validGrammarText: fc.Arbitrary<string> = (() => {
  const char = fc.constantFrom('a', 'b', ' ', '\\n', '\\x41', '\\u00e9', '\\U0001F600', '\\"', 'é', '\\-', '\\]');
  const literal = fc.array(char, { minLength: 1, maxLength: 4 }).map((cs) => `"${cs.join('')}"`);
  const klass = fc
    .tuple(
      fc.boolean(),
      fc.array(fc.constantFrom('a-z', '0-9', 'A', '\\n', 'é', '\\x20-\\x7E'), { minLength: 1, maxLength: 3 }),
    )
    .map(([neg, items]) => `[${neg ? '^' : ''}${items.join('')}]`);
  const repeat = fc.oneof(
    fc.constantFrom('', '', '*', '+', '?'),
    // No {0} or {0,0}: they leave a rule literally empty, and llama.cpp refuses repeating such a rule.
    fc.tuple(fc.nat(6), fc.integer({ min: 1, max: 6 })).map(([m, d]) => `{${m},${m + d}}`),
    fc.integer({ min: 1, max: 6 }).map((m) => `{${m}}`),
    fc.nat(6).map((m) => `{${m},}`),
  );
  // References only to later rules (r1 may use r2, r3), so no recursion at all.
  const grammar = fc.integer({ min: 1, max: 4 }).chain((count) => {
    const ruleBody = (index: number) => {
      const ref = index + 1 < count ? fc.integer({ min: index + 1, max: count - 1 }).map((i) => `r${i}`) : literal;
      const atom = fc.oneof(literal, klass, ref, fc.constant('.'));
      const item = fc.oneof(
        fc.tuple(atom, repeat).map(([a, r]) => a + r),
        fc
          .array(fc.array(atom, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 3 })
          .chain((alts) => repeat.map((r) => `(${alts.map((a) => a.join(' ')).join(' | ')})${r}`)),
      );
      return fc
        .array(fc.array(item, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 3 })
        .map((alts) => alts.map((a) => a.join(' ')).join(' | '));
    };
    return fc.tuple(...Array.from({ length: count }, (_, i) => ruleBody(i)));
  });
  return grammar.map((bodies) => ['root ::= r0', ...bodies.map((body, i) => `r${i} ::= ${body}`)].join('\n'));
})();

/** Schema-like JSON values: real keywords with good and bad values, nested, plus arbitrary JSON. */
export const jsonSchemaLike: fc.Arbitrary<unknown> = fc.letrec<{ schema: unknown }>((tie) => ({
  schema: fc.oneof(
    { depthSize: 'small' },
    fc.jsonValue({ maxDepth: 2 }),
    fc.record(
      {
        type: fc.oneof(
          fc.constantFrom(...['string', 'number', 'integer', 'boolean', 'null', 'object', 'array', 'foo']),
          fc.array(fc.constantFrom('string', 'null', 'object', 'x'), { maxLength: 3 }),
        ),
        enum: fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 }),
        oneOf: fc.array(tie('schema'), { maxLength: 3 }),
        anyOf: fc.array(tie('schema'), { maxLength: 3 }),
        properties: fc.dictionary(fc.string({ maxLength: 5 }), tie('schema'), { maxKeys: 3 }),
        items: tie('schema'),
        minItems: fc.integer({ min: -2, max: 1200 }),
        maxItems: fc.integer({ min: -2, max: 1200 }),
        maxLength: fc.oneof(fc.integer({ min: 0, max: 1200 }), fc.double()),
        $ref: fc.constantFrom('#/$defs/a', '#/$defs/b', '#', '#/definitions/a'),
        $defs: fc.dictionary(fc.constantFrom('a', 'b'), tie('schema'), { maxKeys: 2 }),
      },
      { requiredKeys: [] },
    ),
  ),
})).schema;
