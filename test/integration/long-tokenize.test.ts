import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LlamaEngine } from '../../src/engine/llama/llama-engine.ts';
import { allTokens, tokenizeSliced, tokenizeTail } from '../../src/engine/token-cuts.ts';
import { seededRandom } from '../../src/gguf/seeded-random.ts';
import { buildPromptTokens } from '../../src/scheduler/prompt-tokens.ts';
import { generationRequest } from '../support/generation-request.ts';
import { testModelPath } from '../support/test-model.ts';

let engine: LlamaEngine;
before(async () => {
  engine = await LlamaEngine.load({ modelPath: testModelPath(), contextSize: 512, slots: 1, threads: 1, gpuLayers: 0 });
});
after(async () => engine.dispose());

/** Texts that stress the cut rules: words, no spaces, CJK, emoji (surrogates, ZWJ), whitespace runs, specials. */
const FIXED_TEXTS = [
  'Once upon a time there was a little fox and the dog said yes to the happy cat. '.repeat(4),
  'x'.repeat(300),
  '日本語日本語は日本の言葉です。'.repeat(8),
  '👨‍👩‍👧 🎉🎉 party 🎉👍🏽👍🏽'.repeat(6),
  `a${' '.repeat(40)}b${'\n'.repeat(30)}c \n \n\t\t d   e     `.repeat(3),
  ' leading and trailing spaces ',
  '<|im_start|>user\nHello World<|im_end|>\n<|im_start|>assistant\n yes <|im_end|> x<|im_end|>'.repeat(3),
  'café über ñ ü é caf é café▁the ▁ ▁▁ the▁a',
  'lone \ud800 halves \udc00\ud800x \ufffd\ud83d',
  '...###:  ### Instruction: ... Response: Hello World!',
];

const FRAGMENTS = [
  ' the',
  ' a',
  'the',
  ' ',
  '  ',
  '\n',
  '\n\n',
  '\t',
  'x',
  'Hello',
  ' World',
  '日本',
  '語',
  '本',
  '🎉',
  '👍🏽',
  '\u200d',
  'é',
  'e\u0301',
  ' café',
  '<|im_end|>',
  '<|im_start|>',
  '<|im',
  'end|>',
  '▁',
  '.',
  '...',
  ':',
  '123',
  ' Once',
  ' upon',
];

function randomTexts(count: number): string[] {
  const random = seededRandom(7);
  return Array.from({ length: count }, () => {
    const parts = 5 + Math.floor(random() * 60);
    return Array.from({ length: parts }, () => FRAGMENTS[Math.floor(random() * FRAGMENTS.length)]).join('');
  });
}

const TEXTS = [...FIXED_TEXTS, ...randomTexts(150)];

describe("tokenizing long texts in pieces gives the whole text's tokens", () => {
  for (const special of [true, false]) {
    test(`every cut the rules allow is exact (special: ${special})`, () => {
      const cuts = engine.tokenCuts;
      assert.ok(cuts, 'the test model is SentencePiece: its cuts are known');
      let checked = 0;
      for (const text of TEXTS) {
        const whole = engine.tokenize(text, { special, addBos: false });
        for (let at = 0; at <= text.length; at++) {
          const cut = cuts.cutAt(text, at);
          if (!cut) continue;
          const left = engine.tokenize(text.slice(0, at), { special, addBos: false });
          const right = engine.tokenize(text.slice(cut.rightStart), { special, addBos: false }).slice(cut.dropFirst);
          assert.deepEqual([...left, ...right], whole, `cut at ${at} of ${JSON.stringify(text)}`);
          checked++;
        }
      }
      assert.ok(checked > 2000, `only ${checked} cuts were checked`);
    });

    test(`sliced tokenization equals whole tokenization (special: ${special})`, async () => {
      for (const text of TEXTS) {
        for (const limits of [
          { slice: 7, maxSlice: 20 },
          { slice: 32, maxSlice: 64 },
        ]) {
          const options = { special, addBos: special };
          const sliced = await tokenizeSliced(engine, text, options, undefined, limits);
          if (!sliced.exact) continue;
          assert.deepEqual(allTokens(sliced), engine.tokenize(text, options), JSON.stringify(text));
        }
      }
    });
  }

  test('texts with spaces are always sliced exactly; a text no cut can split is sliced at bounded lengths', async () => {
    const options = { special: true, addBos: true };
    const limits = { slice: 16, maxSlice: 48 };
    const words = await tokenizeSliced(engine, FIXED_TEXTS[0] as string, options, undefined, limits);
    assert.equal(words.exact, true);
    // "xx…": no piece holds "xx", so even a run without spaces has exact cuts in this vocabulary.
    const run = await tokenizeSliced(engine, 'x'.repeat(500), options, undefined, limits);
    assert.equal(run.exact, true);
    assert.deepEqual(allTokens(run), engine.tokenize('x'.repeat(500), options));
    // Nothing may cut inside a run of special tokens: the bounded fallback is taken, and says so.
    const specials = '<|im_end|>'.repeat(20);
    const bounded = await tokenizeSliced(engine, specials, options, undefined, limits);
    assert.equal(bounded.exact, false);
  });

  test("a tail holds exactly the whole text's last tokens", async () => {
    let exactTails = 0;
    for (const text of TEXTS) {
      const long = text.repeat(60);
      const whole = engine.tokenize(long, { special: true, addBos: false });
      for (const count of [1, 5, 40, 400]) {
        const tail = await tokenizeTail(engine, long, true, count);
        assert.ok(tail.tokens.length >= Math.min(count, whole.length), JSON.stringify(text));
        if (!tail.exact) continue;
        exactTails++;
        assert.deepEqual(tail.tokens, whole.slice(whole.length - tail.tokens.length), JSON.stringify(text));
        if (tail.whole) assert.equal(tail.tokens.length, whole.length);
      }
    }
    assert.ok(exactTails > TEXTS.length * 3, `only ${exactTails} tails were exact`);
  });

  test('a tail longer than a slice (a large context) is tokenized in exact slices that let other work run', async () => {
    const text = 'Once upon a time there was a little fox and the dog said yes to the happy cat. '.repeat(20_000);
    const count = 60_000; // the prompt room of a large context: a tail of hundreds of KB
    let turns = 0;
    const ticker = setInterval(() => turns++, 0);
    const tail = await tokenizeTail(engine, text, false, count);
    clearInterval(ticker);
    assert.equal(tail.exact, true);
    assert.ok(text.length - tail.skippedChars > 4 * 32_768, 'the tail spans several slices');
    const whole = engine.tokenize(text, { special: false, addBos: false });
    assert.deepEqual(tail.tokens, whole.slice(whole.length - tail.tokens.length));
    assert.ok(turns > 2, `other work ran ${turns} times while the tail was tokenized`);
  });

  test('a tail of a long text tokenizes a bounded part of it', async () => {
    const text = 'Once upon a time there was a little fox. '.repeat(50_000);
    const tail = await tokenizeTail(engine, text, false, 100);
    assert.equal(tail.whole, false);
    assert.equal(tail.exact, true);
    assert.ok(text.length - tail.skippedChars < 4096, `tokenized ${text.length - tail.skippedChars} chars`);
  });
});

describe('a generation tokenizes only the tail of its prompt that fits', () => {
  const request = (prompt: string, memory: string, maxTokens: number, special: boolean) =>
    generationRequest(prompt, { memory, maxTokens, parseSpecialTokens: special, trimStop: false });
  /** What the scheduler built before: both texts tokenized whole, then trimmed from the front. */
  function wholeReference(prompt: string, memory: string, maxTokens: number, context: number, special: boolean) {
    const budget = context - Math.min(maxTokens, context - 16);
    const bos = engine.tokenize('', { special: true, addBos: true });
    let head = [...bos, ...engine.tokenize(memory, { special, addBos: false })];
    if (head.length > budget) head = [...bos, ...head.slice(head.length - (budget - bos.length))];
    const tokens = engine.tokenize(prompt, { special, addBos: false });
    const room = Math.max(0, budget - head.length);
    return [...head, ...(tokens.length > room ? tokens.slice(tokens.length - room) : tokens)];
  }

  test('the tokens are those a whole-text tokenization keeps, for long and short prompts and memories', async () => {
    const texts = [...FIXED_TEXTS, ...randomTexts(40)];
    for (const [i, text] of texts.entries()) {
      const special = i % 2 === 0;
      for (const [prompt, memory] of [
        [text.repeat(400), ''],
        [text, 'Hello World'],
        [text.repeat(400), text.repeat(3)],
        ['x', text.repeat(400)],
      ] as const) {
        for (const maxTokens of [4, 200]) {
          const built = await buildPromptTokens(engine, request(prompt, memory, maxTokens, special), 512);
          assert.deepEqual(built.tokens, wholeReference(prompt, memory, maxTokens, 512, special), JSON.stringify(text));
        }
      }
    }
  });

  test('an 8 MB prompt costs what its tail costs', async () => {
    const sentence = 'Once upon a time there was a little fox and the dog said yes to the happy cat. ';
    const prompt = sentence.repeat(100_000);
    const started = performance.now();
    const built = await buildPromptTokens(engine, request(prompt, '', 16, false), 512);
    const ms = performance.now() - started;
    assert.equal(built.tokens.length, 512 - 16);
    // The whole text is ~2 M tokens (seconds to tokenize); the part never tokenized is estimated from the tail.
    const whole = (engine.tokenize(sentence.repeat(1000), { special: false, addBos: false }).length * 100_000) / 1000;
    const dropped = whole - (512 - 16 - 1);
    assert.ok(Math.abs(built.truncated - dropped) < dropped * 0.03, `truncated ${built.truncated}, about ${dropped}`);
    assert.ok(ms < 250, `took ${ms.toFixed(0)} ms`);
  });
});
