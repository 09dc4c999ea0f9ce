import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DEFAULT_SAMPLING } from '../../src/core/sampling-params.ts';
import type { EngineEvent, EngineJob } from '../../src/engine/engine.ts';
import { LlamaEngine } from '../../src/engine/llama/llama-engine.ts';
import { withDeadline } from '../support/deadline.ts';
import { testModelPath } from '../support/test-model.ts';

/** The engine on its own (no HTTP): what its batch loop does around a consumer. */
let engine: LlamaEngine;
before(async () => {
  engine = await LlamaEngine.load({ modelPath: testModelPath(), contextSize: 512, slots: 1, threads: 1, gpuLayers: 0 });
});
after(async () => engine.dispose());

const job = (promptTokens: number[], maxTokens = 64): EngineJob => ({
  promptTokens,
  sampling: DEFAULT_SAMPLING,
  seed: 3,
  banEos: true,
  yieldEog: true,
  logprobs: 0,
  maxTokens,
});

async function tokens(events: AsyncGenerator<EngineEvent, void, unknown>, count: number): Promise<number[]> {
  const out: number[] = [];
  while (out.length < count) {
    const next = await withDeadline(events.next(), 30_000, `engine token ${out.length + 1} of ${count}`);
    assert.ok(!next.done, 'the generation ended early');
    if (next.value.type === 'token') out.push(next.value.token);
  }
  return out;
}

test('a consumer that stops reading holds the engine at most two tokens ahead of what it took', async () => {
  const prompt = engine.tokenize('Once upon a time', { special: false, addBos: true });
  const events = engine.run(0, job(prompt), new AbortController().signal);
  const taken = await tokens(events, 3);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const decodedAhead = engine.cachedTokens(0).length - (prompt.length + taken.length);
  assert.ok(decodedAhead <= 2, `${decodedAhead} tokens decoded beyond the ${taken.length} taken`);
  await events.return(undefined);
});

test('a generation stopped mid-stream frees its slot at once, and the next job finds the cache it left', async () => {
  const prompt = engine.tokenize('The little fox', { special: false, addBos: true });
  const first = engine.run(0, job(prompt), new AbortController().signal);
  const taken = await tokens(first, 6);
  // The next token's decode may still be in flight here: the follow-up must wait for it, not corrupt it.
  await first.return(undefined);
  const followUp = [...prompt, ...taken];
  const second = engine.run(0, job(followUp, 8), new AbortController().signal);
  const start = await second.next();
  assert.equal(start.value?.type, 'prompt-evaluated');
  const evaluated = start.value as Extract<EngineEvent, { type: 'prompt-evaluated' }>;
  assert.equal(evaluated.reused, followUp.length - 1, 'everything but the last token came from the cache');
  assert.equal(evaluated.evaluated, 1);
  const more = await tokens(second, 4);
  assert.equal(more.length, 4);
  await second.return(undefined);
  const cached = engine.cachedTokens(0);
  assert.deepEqual(cached.slice(0, followUp.length), followUp);
});

test('an abort during the prompt ends the generation without a token, and the slot is usable again', async () => {
  const long = engine.tokenize('word '.repeat(400), { special: false, addBos: true }).slice(0, 480);
  const abort = new AbortController();
  const events = engine.run(0, job(long, 4), abort.signal);
  const pending = events.next();
  abort.abort();
  const first = await pending;
  assert.ok(first.done, 'no event after the abort');
  const prompt = engine.tokenize('Hello', { special: false, addBos: true });
  const again = engine.run(0, job(prompt, 3), new AbortController().signal);
  assert.equal((await tokens(again, 3)).length, 3);
  await again.return(undefined);
});
