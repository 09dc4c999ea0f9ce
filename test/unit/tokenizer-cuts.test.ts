import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tokenizerCuts } from '../../src/engine/llama/tokenizer-cuts.ts';
import type { TokenCut } from '../../src/engine/token-cuts.ts';
import { seededRandom } from '../../src/gguf/seeded-random.ts';

/**
 * The BPE half of the cut rules, checked without a BPE model: byte-level BPE merges only inside a pre-token, so
 * a cut is exact when it is a boundary of the pre-tokenizer's matches and matching the right side alone gives the
 * same matches. llama.cpp's regexes for the accepted pre-tokenizers, in JavaScript's syntax:
 */
const PRE_TOKENIZERS: Record<string, RegExp[]> = {
  'llama-bpe': [
    /(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu,
  ],
  'gpt-2': [/'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)/gu],
  qwen2: [
    /(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu,
  ],
  starcoder: [/\p{N}/gu, /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)/gu],
};

/** llama.cpp's split: each regex splits every piece so far; text a regex does not match stays a piece. */
function preTokens(text: string, regexes: RegExp[]): string[] {
  let pieces = [text];
  for (const regex of regexes) {
    pieces = pieces.flatMap((piece) => {
      const out: string[] = [];
      let last = 0;
      for (const match of piece.matchAll(regex)) {
        if (match.index > last) out.push(piece.slice(last, match.index));
        out.push(match[0]);
        last = match.index + match[0].length;
      }
      if (last < piece.length) out.push(piece.slice(last));
      return out;
    });
  }
  return pieces;
}

const FRAGMENTS = [
  ' the',
  ' a',
  'x',
  'Hello',
  ' World',
  "'s",
  "'ll",
  ' 123',
  '4567',
  '日本',
  '語',
  '🎉',
  ' ',
  '  ',
  '\n',
  ' \n',
  '\t',
  '.',
  '...',
  '!?',
  ' (',
  ')',
  '-',
  '_',
  'é',
  'e\u0301',
  '<|eot|>',
  ' <|eot|>',
  '\u00a0',
  '\u3000',
  '。',
  '、',
  '「',
  '」',
  '：',
  '！',
  '字',
  'は',
  '한',
  "n't",
  "'x",
];

test('every cut the BPE rules allow (before a space, between a letter and punctuation) is a pre-token boundary, and the right side alone splits the same', () => {
  const random = seededRandom(11);
  const texts = Array.from({ length: 400 }, () =>
    Array.from(
      { length: 3 + Math.floor(random() * 40) },
      () => FRAGMENTS[Math.floor(random() * FRAGMENTS.length)],
    ).join(''),
  );
  let checked = 0;
  let punctuationCuts = 0;
  for (const [pre, regexes] of Object.entries(PRE_TOKENIZERS)) {
    const cuts = tokenizerCuts({ model: 'gpt2', pre, tokens: ['a', '<|eot|>'], token_type: [1, 3] });
    assert.ok(cuts, pre);
    for (const text of texts) {
      const whole = preTokens(text, regexes);
      for (let at = 0; at <= text.length; at++) {
        const cut: TokenCut | undefined = cuts.cutAt(text, at);
        if (!cut) continue;
        assert.equal(cut.rightStart, at);
        if (text[at] !== ' ') punctuationCuts++;
        const left = preTokens(text.slice(0, at), regexes);
        const right = preTokens(text.slice(at), regexes);
        assert.deepEqual([...left, ...right], whole, `${pre}: cut at ${at} of ${JSON.stringify(text)}`);
        checked++;
      }
    }
  }
  assert.ok(checked > 2000, `only ${checked} cuts`);
  assert.ok(punctuationCuts > 500, `only ${punctuationCuts} cuts before punctuation`);
});

test('tokenizers whose cuts are not proven get none', () => {
  assert.equal(tokenizerCuts({ model: 'gpt2', pre: 'superbpe', tokens: ['a'] }), undefined);
  assert.equal(tokenizerCuts({ model: 't5', tokens: ['a'] }), undefined);
  assert.equal(tokenizerCuts({ model: 'bert', tokens: ['a'] }), undefined);
  assert.equal(tokenizerCuts(undefined), undefined);
});
