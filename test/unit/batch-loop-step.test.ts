import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BatchLoop, type DecodeRequest } from '../../src/engine/llama/batch-loop.ts';
import type {
  NativeBatch,
  NativeSampler,
  NativeStep,
  NativeStepResult,
} from '../../src/engine/llama/native-context.ts';

/** The batch loop with a native step (batch-step.ts): what it plans before a decode, and what it does after. */

interface Plan {
  samplers: readonly NativeSampler[];
  logitIndexes: number[];
  probabilities: number[];
  batchTokens: number;
  lastToken: number;
  lastPosition: number;
  lastSequence: number;
}

function fakeNative(fail = false) {
  let finishDecode: (() => void) | undefined;
  let logitCounter = 100;
  const native: NativeBatch = {
    initBatch() {},
    addToBatch: (_sequence, _position, _tokens, logitIndexes) => Uint32Array.from(logitIndexes, () => logitCounter++),
    decodeBatch: () =>
      new Promise<void>((resolve, reject) => {
        finishDecode = () => (fail ? reject(new Error('Eval has failed')) : resolve());
      }),
  };
  const finish = async () => {
    const done = finishDecode;
    assert.ok(done, 'no batch is decoding');
    finishDecode = undefined;
    done();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { native, finish };
}

/** A step that records its plans and hands back `results` (undefined: the plan did not run). */
function fakeStep(results: (plan: Plan) => NativeStepResult[] | undefined) {
  const plans: Plan[] = [];
  let takes = 0;
  const step: NativeStep = {
    plan(samplers, logitIndexes, probabilities, batchTokens, lastToken, lastPosition, lastSequence) {
      plans.push({
        samplers,
        logitIndexes: [...logitIndexes],
        probabilities: [...probabilities],
        batchTokens,
        lastToken,
        lastPosition,
        lastSequence,
      });
      return plans.length;
    },
    take(id) {
      takes++;
      const plan = plans[id - 1];
      return plan ? results(plan) : undefined;
    },
  };
  return { step, plans, takes: () => takes };
}

const sampler = (name: string) => ({ name }) as unknown as NativeSampler;

/** A request that records how it was sampled: with the step's result, or on its own after the decode. */
function request(slot: number, tokens: number[], position: number, probabilities = false) {
  const seen: Array<NativeStepResult | 'own'> = [];
  const decode: DecodeRequest<NativeStepResult | 'own'> = {
    slot,
    tokens,
    position,
    prepare: () => ({ sampler: sampler(`s${slot}`), probabilities }),
    sample: async (_logitIndex, sampled) => {
      seen.push(sampled ?? 'own');
      return sampled ?? 'own';
    },
  };
  return { decode, seen };
}

test('the slots that finish in a batch are planned before its decode and get the results of the step', async () => {
  const f = fakeNative();
  const s = fakeStep((plan) => plan.samplers.map((_, i) => (i === 0 ? 7 : [8, Float64Array.of(8, 1)])));
  const loop = new BatchLoop(f.native, 512, { releaseAfterTurn: true, maxHoldMs: 60_000, step: s.step });
  const a = request(3, [1, 2, 3], 0);
  const b = request(1, [5], 9, true);
  const results = [loop.decode(a.decode), loop.decode(b.decode)];
  await new Promise((resolve) => setImmediate(resolve));
  const plan = s.plans[0];
  assert.deepEqual(plan && { ...plan, samplers: plan.samplers.map((x) => (x as unknown as { name: string }).name) }, {
    samplers: ['s1', 's3'],
    logitIndexes: [100, 101],
    probabilities: [1, 0],
    batchTokens: 4,
    lastToken: 3,
    lastPosition: 2,
    lastSequence: 3,
  });
  await f.finish();
  assert.deepEqual(await Promise.all(results), [[8, Float64Array.of(8, 1)], 7]);
  assert.equal(s.takes(), 1);
});

test('a batch whose plan did not run samples each slot after the decode, as without a step', async () => {
  const f = fakeNative();
  const s = fakeStep(() => undefined);
  const loop = new BatchLoop(f.native, 512, { releaseAfterTurn: false, maxHoldMs: 60_000, step: s.step });
  const a = request(0, [1], 4);
  const pending = loop.decode(a.decode);
  await f.finish();
  assert.equal(await pending, 'own');
  assert.equal(s.plans.length, 1, 'it was planned');
});

test('tokens that end no request in this batch, or that only evaluate, plan nothing', async () => {
  const f = fakeNative();
  const s = fakeStep((plan) => plan.samplers.map(() => 1));
  const loop = new BatchLoop(f.native, 4, { releaseAfterTurn: false, maxHoldMs: 60_000, step: s.step });
  const long = request(0, [1, 2, 3, 4, 5, 6], 0);
  const pending = loop.decode(long.decode);
  assert.equal(s.plans.length, 0, 'the first 4 tokens sample nothing');
  await f.finish();
  assert.equal(s.plans.length, 1);
  assert.equal(s.plans[0]?.batchTokens, 2);
  assert.equal(s.plans[0]?.lastPosition, 5);
  await f.finish();
  assert.equal(await pending, 1);
  loop.leave(0);
  const evaluated = loop.decode({ slot: 1, tokens: [9], position: 0 });
  await f.finish();
  assert.equal(await evaluated, undefined);
  assert.equal(s.plans.length, 1);
});

test('a request whose prepare throws samples on its own; the others of its batch still take the step', async () => {
  const f = fakeNative();
  const s = fakeStep((plan) => plan.samplers.map(() => 5));
  const loop = new BatchLoop(f.native, 512, { releaseAfterTurn: true, maxHoldMs: 60_000, step: s.step });
  const a = request(0, [1], 0);
  const b = request(1, [1], 0);
  b.decode.prepare = () => {
    throw new Error('no chain');
  };
  const both = Promise.all([loop.decode(a.decode), loop.decode(b.decode)]);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(s.plans[0]?.samplers.length, 1);
  await f.finish();
  assert.deepEqual(await both, [5, 'own']);
});

test('a failed decode clears its plan and rejects the batch', async () => {
  const f = fakeNative(true);
  const s = fakeStep((plan) => plan.samplers.map(() => 5));
  const loop = new BatchLoop(f.native, 512, { releaseAfterTurn: false, maxHoldMs: 60_000, step: s.step });
  const a = request(0, [1], 0);
  const rejected = assert.rejects(loop.decode(a.decode), /Eval has failed/);
  await f.finish();
  await rejected;
  assert.equal(s.takes(), 1);
  assert.deepEqual(a.seen, []);
});
