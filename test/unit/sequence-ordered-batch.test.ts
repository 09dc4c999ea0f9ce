import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BatchItem, LlamaContext, Token } from 'node-llama-cpp';
import { fairShares, sequenceOrderedBatches } from '../../src/engine/llama/sequence-ordered-batch.ts';

const item = (length: number): BatchItem => ({
  tokens: Array.from({ length }, (_, i) => i as Token),
  logits: [],
  evaluationPriority: 5,
});

test('fair shares: one-token items always get their token, long prompts share what is left', () => {
  const items = [item(600), item(1), item(300), item(1)];
  const shares = fairShares(items, 512).map((p) => p.processAmount);
  assert.deepEqual(shares, [255, 1, 255, 1]);
  assert.equal(
    shares.reduce((a, b) => a + b, 0),
    512,
  );
});

test('fair shares: what a short item leaves goes to the others; nothing beyond an item or the batch', () => {
  assert.deepEqual(
    fairShares([item(10), item(1000), item(1000)], 512).map((p) => p.processAmount),
    [10, 251, 251],
  );
  assert.deepEqual(
    fairShares([item(3), item(4)], 512).map((p) => p.processAmount),
    [3, 4],
  );
});

test('fair shares: items that get no room are left out (they stay queued for the next batch)', () => {
  const items = [item(5), item(5), item(5)];
  const shares = fairShares(items, 2);
  assert.equal(shares.length, 2);
  assert.deepEqual(
    shares.map((p) => p.processAmount),
    [1, 1],
  );
});

test('the batch lists its sequences in increasing id order, whatever order they were queued in', () => {
  const items = [item(1), item(1), item(40), item(1)];
  const queued = [3, 0, 2, 1].map((sequenceId, i) => ({ sequenceId, tokens: (items[i] as BatchItem).tokens }));
  const context = { _queuedDecodes: queued } as unknown as LlamaContext;
  const batch = sequenceOrderedBatches(() => context)({ items, size: 512 });
  const ids = batch.map((p) => queued.find((q) => q.tokens === p.item.tokens)?.sequenceId);
  assert.deepEqual(ids, [0, 1, 2, 3]);
  assert.deepEqual(
    batch.map((p) => p.processAmount),
    [1, 1, 40, 1],
  );
});

test('a node-llama-cpp without the queue we read fails loudly instead of batching wrong', () => {
  const strategy = sequenceOrderedBatches(() => ({}) as LlamaContext);
  assert.throws(() => strategy({ items: [item(1), item(2)], size: 512 }), /changed shape/);
});

test('a lone sequence is batched whole (up to the batch size) without reading the queue', () => {
  const strategy = sequenceOrderedBatches(() => ({}) as LlamaContext);
  const only = item(700);
  assert.deepEqual(strategy({ items: [only], size: 512 }), [{ item: only, processAmount: 512 }]);
  const one = item(1);
  assert.deepEqual(strategy({ items: [one], size: 512 }), [{ item: one, processAmount: 1 }]);
});
