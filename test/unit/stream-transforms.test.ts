import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StopStringHoldback } from '../../src/stream/stop-string-holdback.ts';
import { TokenTextDecoder } from '../../src/stream/token-text-decoder.ts';

test('stop strings split across chunks are found; their start is held back and never emitted', () => {
  const holdback = new StopStringHoldback(['\nUser:'], true);
  const out = ['Hello', ' World', '\n', 'Us', 'er', ':'].map((chunk) => holdback.push(chunk));
  assert.deepEqual(
    out.map((r) => r.text),
    ['Hello', ' World', '', '', '', ''],
  );
  assert.equal(out[5]?.match?.stop, '\nUser:');
});

test('held text that turns out not to be a stop string is released', () => {
  const holdback = new StopStringHoldback(['\nUser:'], true);
  assert.equal(holdback.push('a\nUs').text, 'a');
  assert.equal(holdback.push('ed').text, '\nUsed');
  assert.equal(holdback.push('\n').text, '');
  assert.equal(holdback.flush(), '\n');
});

test('without trim the stop string is kept and nothing after it', () => {
  const holdback = new StopStringHoldback(['END'], false);
  const result = holdback.push('the END of it');
  assert.deepEqual([result.text, result.match?.stop], ['the END', 'END']);
});

test('the earliest stop string wins; empty stop strings are ignored', () => {
  const holdback = new StopStringHoldback(['', 'bc', 'ab'], true);
  assert.deepEqual(holdback.push('xabc').text, 'x');
});

test('UTF-8: bytes of one character split over tokens come out whole; invalid bytes are dropped', () => {
  const bytes = [...new TextEncoder().encode('a🔥é')];
  // Each "token" is one byte; detokenize joins the bytes like llama.cpp would.
  const detokenize = (tokens: readonly number[]) => new TextDecoder().decode(new Uint8Array(tokens));
  const decoder = new TokenTextDecoder(detokenize);
  const pieces = bytes.map((b) => decoder.push(b)).filter((piece) => piece !== undefined);
  assert.deepEqual(
    pieces.map((piece) => piece.text),
    ['a', '🔥', 'é'],
  );
  assert.deepEqual(pieces[1]?.tokens, [0xf0, 0x9f, 0x94, 0xa5]);
  const broken = new TokenTextDecoder(detokenize);
  const junk = [0xff, 0xfe, 0x41].map((b) => broken.push(b)?.text ?? '').join('') + (broken.flush()?.text ?? '');
  assert.equal(junk, 'A');
});

test('every token keeps its logprob, even bytes of a character that never completes', async () => {
  const { TextPipeline } = await import('../../src/stream/text-pipeline.ts');
  const detokenize = (tokens: readonly number[]) => new TextDecoder().decode(new Uint8Array(tokens));
  const pipeline = new TextPipeline({
    detokenize,
    promptTokens: [],
    stopStrings: [],
    trimStop: true,
    bannedPhrases: [],
  });
  const logprob = (id: number) => ({ token: '', tokenId: id, logprob: -1, top: [] });
  const steps = [0x41, 0xf0, 0x9f].map((b) => pipeline.push(b, logprob(b)));
  const flushed = pipeline.flush();
  const all = [...steps.flatMap((s) => s.emit), ...flushed.emit];
  assert.equal(all.map((o) => o.text).join(''), 'A');
  assert.deepEqual(
    all.flatMap((o) => o.logprobs ?? []).map((l) => l.tokenId),
    [0x41, 0xf0, 0x9f],
  );
});
