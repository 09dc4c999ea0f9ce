import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BatchLoop, fairShares } from '../../src/engine/llama/batch-loop.ts';
import type { NativeBatch } from '../../src/engine/llama/native-context.ts';
import { waitUntil } from '../support/deadline.ts';

interface Entry {
  sequence: number;
  position: number;
  tokens: number[];
  logits: number[];
}

/** llama.cpp's batch API as the loop sees it; each decode waits until the test finishes it. */
function fakeNative() {
  const batches: Entry[][] = [];
  let building: Entry[] = [];
  let finishDecode: ((error?: Error) => void) | undefined;
  let logitCounter = 0;
  const native: NativeBatch = {
    initBatch() {
      building = [];
    },
    addToBatch(sequence, position, tokens, logitIndexes) {
      building.push({ sequence, position, tokens: [...tokens], logits: [...logitIndexes] });
      return Uint32Array.from(logitIndexes, () => logitCounter++);
    },
    decodeBatch() {
      batches.push(building);
      return new Promise<void>((resolve, reject) => {
        finishDecode = (error) => (error ? reject(error) : resolve());
      });
    },
  };
  const finish = async (error?: Error) => {
    const done = finishDecode;
    assert.ok(done, 'no batch is decoding');
    finishDecode = undefined;
    done(error);
    await turn();
  };
  return { native, batches, finish, decoding: () => finishDecode !== undefined };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));
/** A hold limit no test step reaches, where the limit is not what is tested (a loaded machine can take 5 ms). */
const NO_FALLBACK = 60_000;
const sampleAs = (token: number) => async () => token;
const shape = (batch: Entry[]) => batch.map((e) => `${e.sequence}@${e.position}:${e.tokens.length}`);

test('a lone slot decodes at once, one token per batch, and gets what its sampler returned', async () => {
  const f = fakeNative();
  const loop = new BatchLoop(f.native, 512, { releaseAfterTurn: false, maxHoldMs: NO_FALLBACK });
  const first = loop.decode({ slot: 0, tokens: [1, 2, 3], position: 0, sample: sampleAs(7) });
  assert.deepEqual(shape(f.batches[0] ?? []), ['0@0:3'], 'started within the same turn');
  assert.deepEqual(f.batches[0]?.[0]?.logits, [2], 'logits of the last prompt token only');
  await f.finish();
  assert.equal(await first, 7);
  const second = loop.decode({ slot: 0, tokens: [7], position: 3, sample: sampleAs(8) });
  assert.deepEqual(shape(f.batches[1] ?? []), ['0@3:1']);
  await f.finish();
  assert.equal(await second, 8);
});

test('a slot that asks while a batch decodes joins the next batch with every member, listed by sequence id', async () => {
  const f = fakeNative();
  const counters = { decodeBatches: 0, batchedSequences: 0 };
  const loop = new BatchLoop(f.native, 512, { releaseAfterTurn: false, maxHoldMs: NO_FALLBACK, counters });
  const a1 = loop.decode({ slot: 2, tokens: [1], position: 0, sample: sampleAs(10) });
  const b1 = loop.decode({ slot: 0, tokens: [1], position: 0, sample: sampleAs(20) });
  assert.equal(f.batches.length, 1, 'b waits for the batch in flight');
  await f.finish();
  assert.equal(await a1, 10);
  const a2 = loop.decode({ slot: 2, tokens: [10], position: 1, sample: sampleAs(11) });
  await turn();
  assert.deepEqual(shape(f.batches[1] ?? []), ['0@0:1', '2@1:1'], 'one batch, sequence 0 first');
  await f.finish();
  assert.deepEqual(await Promise.all([a2, b1]), [11, 20]);
  assert.deepEqual(counters, { decodeBatches: 2, batchedSequences: 3 });
});

/** Slots 0 and 1 both members with their first token: batches [0] then [1, 0]. */
async function twoMembers(loop: BatchLoop, f: ReturnType<typeof fakeNative>) {
  const a1 = loop.decode({ slot: 0, tokens: [1], position: 0, sample: sampleAs(1) });
  const b1 = loop.decode({ slot: 1, tokens: [1], position: 0, sample: sampleAs(2) });
  await f.finish();
  await a1;
  const a2 = loop.decode({ slot: 0, tokens: [1], position: 1, sample: sampleAs(3) });
  await f.finish();
  await Promise.all([a2, b1]);
  assert.deepEqual(f.batches.map(shape), [['0@0:1'], ['0@1:1', '1@0:1']]);
}

test('a member that got its token holds the next batch until it asks again, or leaves', async () => {
  const f = fakeNative();
  const loop = new BatchLoop(f.native, 512, { releaseAfterTurn: false, maxHoldMs: NO_FALLBACK });
  await twoMembers(loop, f);
  loop.decode({ slot: 0, tokens: [3], position: 2, sample: sampleAs(4) });
  await turn();
  assert.equal(f.batches.length, 2, 'a waits while b is a member that has not asked again');
  loop.leave(1);
  assert.deepEqual(shape(f.batches[2] ?? []), ['0@2:1']);
  await f.finish();
});

test('a member busy with something else holds the others back at most maxHoldMs', async () => {
  const f = fakeNative();
  const loop = new BatchLoop(f.native, 512, { releaseAfterTurn: false, maxHoldMs: 200 });
  await twoMembers(loop, f);
  loop.decode({ slot: 0, tokens: [3], position: 2, sample: sampleAs(4) });
  const asked = performance.now();
  await turn();
  assert.equal(f.batches.length, 2, 'held');
  await waitUntil(() => f.batches.length >= 3, 5000, 'the held batch to start', 2);
  const waited = performance.now() - asked;
  // Node starts a timer from the loop's cached clock, so on a loaded machine it can fire some ms early.
  assert.ok(waited >= 100 && waited < 2000, `started after ${waited.toFixed(1)} ms`);
  await f.finish();
});

test('long prompts share the batch fairly with generating slots and continue in the next batches', async () => {
  const f = fakeNative();
  const loop = new BatchLoop(f.native, 8, { releaseAfterTurn: false, maxHoldMs: NO_FALLBACK });
  const decoded: number[] = [];
  const gen = loop.decode({ slot: 0, tokens: [1], position: 5, sample: sampleAs(9) });
  const prompt = Array.from({ length: 12 }, (_, i) => 100 + i);
  const long = loop.decode({
    slot: 1,
    tokens: prompt,
    position: 0,
    sample: sampleAs(42),
    decoded: (tokens) => decoded.push(...tokens),
  });
  assert.equal(f.batches.length, 1);
  await f.finish();
  assert.equal(await gen, 9);
  loop.decode({ slot: 0, tokens: [9], position: 6, sample: sampleAs(10) });
  await turn();
  assert.deepEqual(shape(f.batches[1] ?? []), ['0@6:1', '1@0:7'], 'the generating slot keeps its token');
  assert.deepEqual(f.batches[1]?.[1]?.logits, [], 'no logits before the prompt ends');
  await f.finish();
  assert.deepEqual(decoded, prompt.slice(0, 7));
  loop.decode({ slot: 0, tokens: [10], position: 7, sample: sampleAs(11) });
  await turn();
  assert.deepEqual(shape(f.batches[2] ?? []), ['0@7:1', '1@7:5']);
  assert.deepEqual(f.batches[2]?.[1]?.logits, [4]);
  await f.finish();
  assert.equal(await long, 42);
  assert.deepEqual(decoded, prompt);
});

test('leave cancels a queued request (it resolves undefined, never decodes); an aborted prompt stops between batches', async () => {
  const f = fakeNative();
  const loop = new BatchLoop(f.native, 4, { releaseAfterTurn: false, maxHoldMs: NO_FALLBACK });
  const a = loop.decode({ slot: 0, tokens: [1], position: 0, sample: sampleAs(1) });
  const b = loop.decode({ slot: 1, tokens: [1], position: 0, sample: sampleAs(2) });
  loop.leave(1);
  assert.equal(await b, undefined);
  await f.finish();
  assert.equal(await a, 1);
  loop.leave(0);
  const abort = new AbortController();
  const prompt = loop.decode({ slot: 0, tokens: [1, 2, 3, 4, 5, 6, 7, 8, 9], position: 0, signal: abort.signal });
  abort.abort();
  await f.finish();
  assert.equal(await prompt, undefined);
  assert.equal(f.batches.length, 2, 'no batch after the abort');
  assert.deepEqual(
    f.batches.flat().map((e) => e.sequence),
    [0, 0],
  );
});

test('KV edits wait for the batch in flight, and the next batch waits for them', async () => {
  const f = fakeNative();
  const loop = new BatchLoop(f.native, 512, { releaseAfterTurn: false, maxHoldMs: NO_FALLBACK });
  const order: string[] = [];
  const a = loop.decode({ slot: 0, tokens: [1], position: 0, sample: sampleAs(1) });
  const edit = loop.exclusive(() => {
    order.push(`edit while decoding: ${f.decoding()}`);
    return 7;
  });
  assert.ok(edit instanceof Promise);
  await turn();
  assert.deepEqual(order, []);
  await f.finish();
  assert.equal(await edit, 7);
  assert.deepEqual(order, ['edit while decoding: false']);
  assert.equal(await a, 1);
  assert.equal(
    loop.exclusive(() => 8),
    8,
    'with nothing decoding the edit runs at once',
  );
});

test('runAlone work starts after the batch in flight, and no batch starts until it is done', async () => {
  const f = fakeNative();
  const loop = new BatchLoop(f.native, 512, { releaseAfterTurn: false, maxHoldMs: NO_FALLBACK });
  const a = loop.decode({ slot: 0, tokens: [1], position: 0, sample: sampleAs(1) });
  let finishWork: (() => void) | undefined;
  let workStarted = false;
  const work = loop.runAlone(
    () =>
      new Promise<string>((resolve) => {
        workStarted = true;
        finishWork = () => resolve('embedded');
      }),
  );
  await turn();
  assert.equal(workStarted, false, 'waits for the batch');
  await f.finish();
  assert.equal(await a, 1);
  assert.equal(workStarted, true);
  const b = loop.decode({ slot: 0, tokens: [1], position: 1, sample: sampleAs(2) });
  await turn();
  assert.equal(f.batches.length, 1, 'no batch while the work runs');
  finishWork?.();
  assert.equal(await work, 'embedded');
  await turn();
  assert.equal(f.batches.length, 2);
  await f.finish();
  assert.equal(await b, 2);
});

test('a failed decode rejects the requests in its batch, and the loop goes on with the next one', async () => {
  const f = fakeNative();
  const loop = new BatchLoop(f.native, 512, { releaseAfterTurn: false, maxHoldMs: NO_FALLBACK });
  const a = loop.decode({ slot: 0, tokens: [1], position: 0, sample: sampleAs(1) });
  const b = loop.decode({ slot: 1, tokens: [1], position: 0, sample: sampleAs(2) });
  const failed = assert.rejects(a, /decode failed/);
  await f.finish(new Error('decode failed'));
  await failed;
  assert.equal(f.batches.length, 2, 'b is decoded in a batch of its own');
  await f.finish();
  assert.equal(await b, 2);
});

test('with releaseAfterTurn a batch starts in the check phase, after this turn', async () => {
  const f = fakeNative();
  const loop = new BatchLoop(f.native, 512, { releaseAfterTurn: true });
  loop.decode({ slot: 0, tokens: [1], position: 0, sample: sampleAs(1) });
  await Promise.resolve();
  assert.equal(f.batches.length, 0, 'not started within the same turn');
  await turn();
  assert.equal(f.batches.length, 1);
});

test('fair shares: one-token items always get their token, long prompts share what is left', () => {
  assert.deepEqual(fairShares([600, 1, 300, 1], 512), [255, 1, 255, 1]);
  assert.deepEqual(fairShares([10, 1000, 1000], 512), [10, 251, 251]);
  assert.deepEqual(fairShares([3, 4], 512), [3, 4]);
  assert.deepEqual(fairShares([5, 5, 5], 2), [1, 1, 0], 'an item without room stays queued');
});
