import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LoggedPart } from '../../src/core/logged-part.ts';
import { GenerationLog } from '../../src/stream/generation-log.ts';

const text = (t: string) => ({ type: 'text-delta' as const, text: t, tokens: [1] });

test('a reader gets what accumulated as one batch, then each new part, and stops at the final part', async () => {
  const log = new GenerationLog();
  log.append(text('a'));
  log.append(text('b'));
  const batches: number[][] = [];
  const reading = (async () => {
    for await (const batch of log.read(0)) batches.push(batch.map((p) => p.id));
  })();
  await new Promise((resolve) => setImmediate(resolve));
  log.append(text('c'));
  await new Promise((resolve) => setImmediate(resolve));
  log.append({
    type: 'finish',
    reason: 'max-tokens',
    usage: { promptTokens: 1, cachedPromptTokens: 0, completionTokens: 3, truncatedPromptTokens: 0 },
    timings: { queuedMs: 0, promptMs: 0, generationMs: 0 },
  });
  await reading;
  assert.deepEqual(batches, [[1, 2], [3], [4]]);
});

test('a cursor below zero reads from the start and never yields an empty batch', async () => {
  const log = new GenerationLog();
  const batches: LoggedPart[][] = [];
  const controller = new AbortController();
  const reading = (async () => {
    for await (const batch of log.read(-3, controller.signal)) batches.push(batch);
  })();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(batches.length, 0, 'nothing logged, nothing read');
  log.append(text('a'));
  await new Promise((resolve) => setImmediate(resolve));
  controller.abort();
  await reading;
  assert.deepEqual(
    batches.map((b) => b.map((p) => p.id)),
    [[1]],
  );
});

test('an abort ends a reader that is waiting for the next part', async () => {
  const log = new GenerationLog();
  const controller = new AbortController();
  const reading = (async () => {
    for await (const _ of log.read(0, controller.signal)) assert.fail('nothing was logged');
  })();
  await new Promise((resolve) => setImmediate(resolve));
  controller.abort();
  await reading;
});
