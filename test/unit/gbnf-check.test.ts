import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  checkGbnf,
  GBNF_MAX_CHARS,
  GBNF_MAX_ELEMENTS,
  GBNF_MAX_NESTING,
  GBNF_MAX_REPEAT,
  GBNF_MAX_RULES,
} from '../../src/core/gbnf-check.ts';
import { KindlingError } from '../../src/core/kindling-error.ts';
import { JSON_OBJECT_GRAMMAR } from '../../src/protocols/common/json-grammar.ts';
import { grammarText, validGrammarText } from '../support/gbnf-arbitraries.ts';

/** The check's 400, with its message. */
function rejects(grammar: string, ...fragments: (string | RegExp)[]): void {
  let error: unknown;
  try {
    checkGbnf(grammar);
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof KindlingError, `expected a rejection of ${JSON.stringify(grammar.slice(0, 80))}`);
  assert.equal(error.status, 400);
  assert.equal(error.details.field, 'grammar');
  for (const fragment of fragments)
    if (typeof fragment === 'string') assert.ok(error.message.includes(fragment), `${error.message} lacks ${fragment}`);
    else assert.match(error.message, fragment);
}

const accepts = (grammar: string) => checkGbnf(grammar);

test('the issue’s repeats whose minimum exceeds the maximum are refused, naming the rule and the repeat', () => {
  for (const repeat of ['{3,1}', '{1,0}', '{5,2}'])
    rejects(`root ::= "a"${repeat}`, 'rule root', repeat, 'minimum above its maximum');
  rejects('root ::= item\nitem ::= [0-9]{9,3}', 'rule item', '{9,3}', 'line 2');
});

test('[\\x00] and other terminals no token can produce are refused (llama.cpp fails at the first token)', () => {
  rejects('root ::= [\\x00]', 'rule root', 'NUL');
  rejects('root ::= "a\\x00b"', 'rule root', 'NUL');
  rejects('root ::= [\\x00-\\x00]', 'matches no character');
  rejects('root ::= [^\\x01-\\U0010FFFF]', 'matches no character');
  rejects('root ::= "\\U00110000"', 'past the last Unicode code point');
  rejects('root ::= []', 'empty character class');
  rejects('root ::= [^]', 'empty character class');
  rejects('root ::= [z-a]', 'reversed');
  rejects('root ::= "a"\u0000 junk', 'NUL character');
  // NUL inside a negated class or as the start of a wider range is fine: other characters remain.
  accepts('root ::= [^\\x00] [\\x00-\\x1F] [^"\\\\\\x7F\\x00-\\x1F]');
});

test('syntax errors name the rule, the line and the column', () => {
  rejects('root ::= "a', 'unterminated string literal', 'line 1, column 10');
  rejects('root ::= [a-z', 'unterminated character class');
  rejects('root ::= ("a" | "b"', 'expecting )');
  rejects('root ::= "a" )', 'expecting a newline');
  rejects('root := "a"', 'expecting ::=');
  rejects('root ::= "\\q"', 'unknown escape \\q');
  rejects('root ::= "\\x4"', 'expecting 2 hex digits');
  rejects('root ::= "\\u12G4"', 'expecting 4 hex digits');
  rejects('root ::= *', 'nothing before it');
  rejects('root ::= "" +', 'nothing before it');
  rejects('root ::= "a"{', 'expecting an integer');
  rejects('root ::= "a"{2', 'expecting , or }');
  rejects('root ::= "a"{2,3', 'expecting }');
  rejects('root ::= "a"\n| "b"', 'unexpected | at the start of a line', 'line 2');
  rejects('root ::= <think>', 'tokens must be written by id');
  rejects('root ::= <[99999999999]>', 'past 4294967295');
  rejects('root ::= !"a"', 'expecting < after !');
  rejects('', 'defines no rules');
  rejects('# nothing but a comment\n', 'defines no rules');
});

test('undefined rules, a missing root and left recursion are refused by name', () => {
  rejects('root ::= greeting', 'rule greeting is used but never defined', 'used in rule root');
  rejects('start ::= "a"', 'no root rule');
  rejects('root ::= root "a" | "b"', 'rule root is left-recursive');
  rejects('root ::= list\nlist ::= list "," item | item\nitem ::= "x"', 'rule list is left-recursive');
  // Left recursion behind rules that can be empty: llama.cpp misses it and then expands stacks forever.
  rejects('root ::= a root "x" | "y"\na ::= b\nb ::= ""', 'left-recursive');
  rejects('root ::= opt root "x" | "y"\nopt ::= "z"?', 'left-recursive');
  // llama.cpp's own check refuses a repeat of an optional item (the ? rule is literally empty).
  rejects('root ::= "a"?* "b"', 'literally empty');
  // A cycle through tail references only comes back to the same stack, which llama.cpp notices: accepted there.
  accepts('root ::= (ws)* "x"\nws ::= " "?');
  // Right recursion is fine.
  accepts('root ::= "a" root | "b"');
  // llama.cpp's left-recursion search does not remember finished rules: 2^40 steps here.
  const chain = Array.from({ length: 40 }, (_, i) => `a${i} ::= a${i + 1} | a${i + 1}`).join('\n');
  rejects(`root ::= a0\n${chain}\na40 ::= "x"`, 'left-recursion check would take');
});

test('repeat bounds, nesting, size and the expansion of nested repeats are bounded', () => {
  accepts(`root ::= "a"{${GBNF_MAX_REPEAT}}`);
  rejects(`root ::= "a"{${GBNF_MAX_REPEAT + 1}}`, `limit of ${GBNF_MAX_REPEAT}`);
  rejects(`root ::= "a"{0,${GBNF_MAX_REPEAT + 1}}`, `limit of ${GBNF_MAX_REPEAT}`);
  rejects('root ::= "a"{99999999999999999999999}', 'limit');
  rejects('root ::= "a"{0,99999999999999999999999}', 'limit');
  rejects('root ::= "a"{2,99999999999}', 'limit');
  rejects('root ::= ("a"{0,999}){0,999}', 'rule root', 'fewer than 2000');
  rejects('root ::= (("a"{0,40}){0,40}){0,40}', 'fewer than 2000');
  rejects(`root ::= "${'x'.repeat(5000)}"{1000}`, `${GBNF_MAX_ELEMENTS} elements`);
  const many = Array.from({ length: 12 }, (_, i) => `r${i} ::= [a-z]{0,999}`).join('\n');
  rejects(`root ::= r0\n${many}`, `${GBNF_MAX_RULES} rules`);
  accepts(`root ::= ${'('.repeat(GBNF_MAX_NESTING)}"a"${')'.repeat(GBNF_MAX_NESTING)}`);
  rejects(`root ::= ${'('.repeat(GBNF_MAX_NESTING + 1)}"a"${')'.repeat(GBNF_MAX_NESTING + 1)}`, 'nest deeper');
  rejects(`root ::= "${'a'.repeat(GBNF_MAX_CHARS)}"`, `limit is ${GBNF_MAX_CHARS}`);
});

test('grammars that make llama.cpp track exponentially many parse stacks are refused', () => {
  // Every path through nested optional rules is a stack of its own: 2^13 at the first character.
  const nested = Array.from({ length: 13 }, (_, i) => `a${i} ::= a${i + 1} a${i + 1}`).join('\n');
  rejects(`root ::= a0 "z"\n${nested}\na13 ::= "x" | ""`, 'too ambiguous', 'at its start');
  // Two alternatives that share a prefix and differ after the recursion double the stacks with every "a".
  rejects('root ::= r\nr ::= "a" r "b" | "a" r "c" | "d"', 'too ambiguous', 'after');
});

test('everything valid llama.cpp grammars use is accepted', () => {
  accepts(JSON_OBJECT_GRAMMAR);
  accepts(String.raw`# a comment line
root ::= greeting ws name "!"   # trailing comment
greeting ::= "Hello" | "Hi" |
  "Hey"
name ::= [A-Z] [a-z]* ("-" [A-Z] [a-z]+)?
ws ::= [ \t\n]+
`);
  accepts(String.raw`root ::= "\x41\u00e9\U0001F600\t\n\r\\\"\[\]\-" [\x00-\x1F\-\]] [^\n] . "日本" [ぁ-ゟ]`);
  accepts('root ::= "a"* "b"+ "c"? "d"{2} "e"{2,} "f"{2,5} "g"{0} "h"{ 1 , 3 }');
  accepts('root ::= ("a" | "b")*? "c"');
  accepts('root ::= <[12]> !<[3]> "x"');
  accepts('root ::= "a"\r\nb ::= "b"\r\n');
  accepts('root ::= (\n  "a"\n  | "b"\n)');
  accepts('root ::= x\nx ::= "a"\nx ::= "b"');
  accepts('root-rule-2 ::= "a"\nroot ::= root-rule-2');
  accepts('root ::= [a-z]{1,1000}');
});

test("every grammar bundled with node-llama-cpp's llama.cpp is accepted", () => {
  const dir = join(import.meta.dirname, '../../node_modules/node-llama-cpp/llama/grammars');
  const files = readdirSync(dir).filter((name) => name.endsWith('.gbnf'));
  assert.ok(files.length >= 5, `found ${files.length} bundled grammars`);
  for (const name of files) {
    const summary = checkGbnf(readFileSync(join(dir, name), 'utf8'));
    assert.ok(summary.rules > 0, name);
  }
});

const TIME_LIMIT_MS = 2000;

/** The check either accepts or throws a 400 KindlingError, in bounded time, whatever the text. */
function total(text: string): boolean {
  const start = performance.now();
  try {
    checkGbnf(text);
  } catch (error) {
    if (!(error instanceof KindlingError) || error.status !== 400) throw error;
  }
  const ms = performance.now() - start;
  if (ms > TIME_LIMIT_MS) throw new Error(`took ${ms.toFixed(0)} ms on ${JSON.stringify(text.slice(0, 200))}`);
  return true;
}

test('property: on arbitrary strings the check returns or throws a 400, quickly', () => {
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 400 }), total), { seed: 16, numRuns: 400 });
  fc.assert(
    fc.property(
      fc.string({ maxLength: 60 }).map((s) => `root ::= ${s}`),
      total,
    ),
    { seed: 17, numRuns: 400 },
  );
});

test('property: on generated grammar-like texts the check returns or throws a 400, quickly', () => {
  fc.assert(fc.property(grammarText, total), { seed: 18, numRuns: 600 });
});

test('property: grammars valid by construction are accepted, unless too ambiguous for llama.cpp', () => {
  let accepted = 0;
  fc.assert(
    fc.property(validGrammarText, (text) => {
      try {
        checkGbnf(text);
        accepted++;
      } catch (error) {
        // Random nesting of repeats and alternatives can be truly ambiguous; nothing else may be refused.
        if (!(error instanceof KindlingError) || !error.message.includes('too ambiguous')) throw error;
      }
    }),
    { seed: 19, numRuns: 150 },
  );
  assert.ok(accepted > 120, `only ${accepted} of 150 accepted`);
});
