import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_QOS, FairQueue, type QueueQos } from '../../src/scheduler/fair-queue.ts';

const qos = (overrides: Partial<QueueQos> = {}): QueueQos => ({ ...DEFAULT_QOS, ...overrides });

/** Takes every item in turn, releasing each at once (one slot), and returns the start order. */
function drainOneSlot(queue: FairQueue<string>): string[] {
  const out: string[] = [];
  for (let item = queue.take(); item !== undefined; item = queue.take()) {
    out.push(item);
    queue.release(item.split('-')[0] as string);
  }
  return out;
}

test('one principal queueing 50 delays another principal single request by at most one turn', () => {
  const queue = new FairQueue<string>();
  for (let i = 0; i < 50; i++) queue.push(`A-${i}`, 'A');
  assert.equal(queue.take(), 'A-0');
  queue.push('B-0', 'B');
  assert.deepEqual(queue.order().slice(0, 2), ['B-0', 'A-1']);
  assert.equal(queue.take(), 'B-0');
});

test('equal weights alternate between principals; weight 2 gets two turns for each of weight 1', () => {
  const equal = new FairQueue<string>();
  for (let i = 0; i < 3; i++) equal.push(`A-${i}`, 'A');
  for (let i = 0; i < 3; i++) equal.push(`B-${i}`, 'B');
  assert.deepEqual(drainOneSlot(equal), ['A-0', 'B-0', 'A-1', 'B-1', 'A-2', 'B-2']);

  const weighted = new FairQueue<string>();
  for (let i = 0; i < 6; i++) weighted.push(`H-${i}`, 'H', qos({ weight: 2 }));
  for (let i = 0; i < 3; i++) weighted.push(`L-${i}`, 'L');
  const order = drainOneSlot(weighted);
  assert.deepEqual(order.slice(0, 6), ['H-0', 'L-0', 'H-1', 'H-2', 'L-1', 'H-3']);
});

test('an idle principal saves no credit: its next request starts at the current turn, not before the others', () => {
  const queue = new FairQueue<string>();
  for (let i = 0; i < 4; i++) queue.push(`A-${i}`, 'A');
  queue.take();
  queue.release('A');
  queue.take();
  queue.release('A');
  // B was idle all along: its requests take the current turn and the next, so they alternate with A's from
  // here on; with the credit of the two turns it sat out, both would go before A's.
  queue.push('B-0', 'B');
  queue.push('B-1', 'B');
  assert.deepEqual(queue.order(), ['B-0', 'A-2', 'B-1', 'A-3']);
});

test('interactive starts before batch; a batch request that waited past the aging limit goes first', () => {
  let now = 0;
  const queue = new FairQueue<string>(1000, () => now);
  queue.push('batch-0', 'batch', qos({ priority: 'batch' }));
  now = 500;
  queue.push('chat-0', 'chat');
  queue.push('chat-1', 'chat');
  assert.deepEqual(queue.order(), ['chat-0', 'chat-1', 'batch-0']);
  assert.equal(queue.nextAgingAt(), 1000);
  now = 1000;
  assert.deepEqual(queue.order(), ['batch-0', 'chat-0', 'chat-1'], 'aged: ordered as interactive, by its old turn');
  assert.equal(queue.nextAgingAt(), undefined);
  assert.equal(queue.take(), 'batch-0');
});

test('max_concurrent: a principal at its cap is passed over, and its requests wait until one ends', () => {
  const queue = new FairQueue<string>();
  const capped = qos({ maxConcurrent: 1 });
  for (let i = 0; i < 3; i++) queue.push(`A-${i}`, 'A', capped);
  queue.push('B-0', 'B');
  assert.equal(queue.take(), 'A-0');
  assert.equal(queue.take(), 'B-0');
  assert.equal(queue.take(), undefined, 'A holds its one slot; nothing else waits');
  assert.equal(queue.runningOf('A'), 1);
  assert.deepEqual(queue.order(2), ['A-1', 'A-2']);
  queue.release('A');
  assert.equal(queue.take(), 'A-1');
});

test('order() is the order take() hands out, caps included, and positions follow removals', () => {
  const queue = new FairQueue<string>();
  const capped = qos({ maxConcurrent: 1 });
  for (let i = 0; i < 3; i++) queue.push(`A-${i}`, 'A', capped);
  for (let i = 0; i < 3; i++) queue.push(`B-${i}`, 'B');
  queue.push('C-0', 'C', qos({ priority: 'batch' }));
  const promised = queue.order(1);
  assert.deepEqual(drainOneSlot(queue), promised);

  const removing = new FairQueue<string>();
  for (const item of ['A-0', 'A-1', 'B-0']) removing.push(item, item.split('-')[0] as string);
  assert.deepEqual(removing.order(), ['A-0', 'B-0', 'A-1']);
  assert.equal(removing.remove('B-0'), true);
  assert.equal(removing.remove('B-0'), false);
  assert.deepEqual(removing.order(), ['A-0', 'A-1']);
  assert.equal(removing.queuedOf('A'), 2);
  assert.equal(removing.queuedOf('B'), 0);
});

test('requests aborted while queued cost their principal no share: its later ones move up', () => {
  const queue = new FairQueue<string>();
  for (let i = 0; i < 4; i++) queue.push(`A-${i}`, 'A');
  queue.take();
  for (const item of ['A-1', 'A-2']) queue.remove(item);
  queue.push('B-0', 'B');
  queue.push('B-1', 'B');
  assert.deepEqual(queue.order(), ['B-0', 'A-3', 'B-1'], 'A-3 holds the turn A-1 left, not one two turns later');
  // Its next request takes that turn again; B-1, which arrived first, keeps the tie.
  queue.remove('A-3');
  queue.push('A-4', 'A');
  assert.deepEqual(queue.order(), ['B-0', 'B-1', 'A-4']);
  queue.push('A-5', 'A');
  assert.deepEqual(queue.order(), ['B-0', 'B-1', 'A-4', 'A-5']);
});
