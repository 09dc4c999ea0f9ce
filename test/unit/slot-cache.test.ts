import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { NativeKvCache } from '../../src/engine/llama/native-context.ts';
import { SlotCache } from '../../src/engine/llama/slot-cache.ts';

/** A KV cache that records the calls; `partialRemoval: false` behaves like a recurrent model's. */
function fakeKv(options: { partialRemoval?: boolean; minPosition?: number } = {}) {
  const calls: string[] = [];
  const kv: NativeKvCache = {
    removeTokenCellsFromSequence(id, start, end) {
      calls.push(`remove ${id} ${start}-${end}`);
      return options.partialRemoval ?? true;
    },
    shiftSequenceTokenCells(id, start, end, delta) {
      calls.push(`shift ${id} ${start}-${end} by ${delta}`);
    },
    getSequenceKvCacheMinPosition: () => options.minPosition ?? 0,
    disposeSequence(id) {
      calls.push(`clear ${id}`);
    },
  };
  return { kv, calls };
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

test('a prompt that extends the cache reuses all of it but the last prompt token', () => {
  const { kv, calls } = fakeKv();
  const cache = new SlotCache(1, kv);
  cache.append([1, 2, 3, 4]);
  assert.equal(cache.reusePrefix([1, 2, 3, 4, 5, 6]), 4);
  assert.deepEqual(calls, []);
  assert.equal(cache.reusePrefix([1, 2, 3, 4]), 3, 'the last token is evaluated again for its logits');
  assert.deepEqual(calls, ['remove 1 3-4']);
  assert.deepEqual(cache.tokens, [1, 2, 3]);
});

test('a prompt that differs keeps the common prefix and drops the rest', () => {
  const { kv, calls } = fakeKv();
  const cache = new SlotCache(0, kv);
  cache.append([1, 2, 3, 4, 5]);
  assert.equal(cache.reusePrefix([1, 2, 9]), 2);
  assert.deepEqual(calls, ['remove 0 2-5']);
  assert.deepEqual(cache.tokens, [1, 2]);
});

test('a story whose front was trimmed is shifted down instead of evaluated again', () => {
  const { kv, calls } = fakeKv();
  const cache = new SlotCache(0, kv);
  cache.append([1, ...range(100, 140)]);
  const prompt = [1, ...range(110, 140), 7, 8];
  assert.equal(cache.reusePrefix(prompt), 31);
  assert.deepEqual(calls, ['remove 0 1-11', 'shift 0 11-41 by -10']);
  assert.deepEqual(cache.tokens, [1, ...range(110, 140)]);
});

test('where the cache cannot drop part of a sequence it is cleared and nothing is reused', () => {
  const { kv, calls } = fakeKv({ partialRemoval: false });
  const cache = new SlotCache(2, kv);
  cache.append([1, 2, 3, 4]);
  assert.equal(cache.reusePrefix([1, 2, 9]), 0);
  assert.deepEqual(calls, ['remove 2 2-4', 'clear 2']);
  assert.deepEqual(cache.tokens, []);
});

test('a sliding-window cache that has lost the start of the range is cleared, not edited', () => {
  const { kv, calls } = fakeKv({ minPosition: 3 });
  const cache = new SlotCache(0, kv);
  cache.append([1, 2, 3, 4, 5, 6]);
  assert.equal(cache.erase(2, 6), false);
  assert.deepEqual(calls, ['clear 0']);
  assert.equal(cache.erase(0, 0), true, 'an empty range is no edit');
});
