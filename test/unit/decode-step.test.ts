import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DecodeStep } from '../../src/engine/llama/decode-step.ts';

/** A decode the test finishes by hand; `started` records the order in which decodes began. */
function decodes() {
  const started: string[] = [];
  const finishers = new Map<string, () => void>();
  const decode = (name: string) => () =>
    new Promise<string>((resolve) => {
      started.push(name);
      finishers.set(name, () => resolve(name));
    });
  const finish = async (name: string) => {
    const done = finishers.get(name);
    assert.ok(done, `${name} was never started`);
    done();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { started, decode, finish };
}

/** A hold limit no test step reaches, where the limit is not what is tested (a loaded machine can take 5 ms). */
const NO_FALLBACK = 60_000;

const turn = () => new Promise((resolve) => setImmediate(resolve));

/** Slots 0 and 1 in one step: a's first decode runs alone, b joins the step after it (decodes a2 and b1). */
async function inStep(step: DecodeStep, d: ReturnType<typeof decodes>) {
  const a1 = step.next(0, d.decode('a1'));
  const b1 = step.next(1, d.decode('b1'));
  await turn();
  assert.deepEqual(d.started, ['a1'], 'b1 waits for the step in flight');
  await d.finish('a1');
  await a1;
  const a2 = step.next(0, d.decode('a2'));
  await turn();
  assert.deepEqual(d.started, ['a1', 'b1', 'a2'], 'b1 and a2 start together');
  return { a2, b1 };
}

test('a slot that asks while a step is decoding joins the next step, not a batch of its own', async () => {
  const step = new DecodeStep(false, NO_FALLBACK);
  const d = decodes();
  const { a2, b1 } = await inStep(step, d);
  await d.finish('b1');
  await d.finish('a2');
  assert.deepEqual(await Promise.all([b1, a2]), ['b1', 'a2']);
});

test('a member that got its token waits for the others, then all of them start in the same turn', async () => {
  const step = new DecodeStep(false, NO_FALLBACK);
  const d = decodes();
  const { a2, b1 } = await inStep(step, d);
  await d.finish('b1');
  assert.equal(await b1, 'b1');
  const b2 = step.next(1, d.decode('b2'));
  await turn();
  assert.deepEqual(d.started, ['a1', 'b1', 'a2'], 'b2 must not start while a2 is still decoding');
  await d.finish('a2');
  assert.equal(await a2, 'a2');
  const a3 = step.next(0, d.decode('a3'));
  await turn();
  assert.deepEqual(d.started, ['a1', 'b1', 'a2', 'b2', 'a3']);
  await d.finish('b2');
  await d.finish('a3');
  assert.deepEqual(await Promise.all([b2, a3]), ['b2', 'a3']);
});

test('a member that leaves releases the ones waiting for it', async () => {
  const step = new DecodeStep(false, NO_FALLBACK);
  const d = decodes();
  const { a2, b1 } = await inStep(step, d);
  await d.finish('a2');
  await a2;
  step.next(0, d.decode('a3'));
  await d.finish('b1');
  await b1;
  await turn();
  assert.deepEqual(d.started, ['a1', 'b1', 'a2'], 'a3 waits while b is a member that has not asked again');
  step.leave(1);
  await turn();
  assert.deepEqual(d.started, ['a1', 'b1', 'a2', 'a3']);
});

test('a member busy with something else holds the others back at most maxHoldMs', async () => {
  const step = new DecodeStep(false, 20);
  const d = decodes();
  const { a2, b1 } = await inStep(step, d);
  await d.finish('a2');
  await a2;
  await d.finish('b1');
  await b1;
  step.next(0, d.decode('a3'));
  const asked = performance.now();
  while (d.started.length < 4) await new Promise((resolve) => setTimeout(resolve, 2));
  const waited = performance.now() - asked;
  assert.deepEqual(d.started, ['a1', 'b1', 'a2', 'a3']);
  assert.ok(waited >= 15 && waited < 500, `a3 started after ${waited.toFixed(1)} ms`);
});

test('a decode asked for by a slot that then leaves never starts, and its promise rejects', async () => {
  const step = new DecodeStep(false, NO_FALLBACK);
  const d = decodes();
  const { a2, b1 } = await inStep(step, d);
  await d.finish('b1');
  await b1;
  const b2 = step.next(1, d.decode('b2'));
  step.leave(1);
  await assert.rejects(b2, /left the decode step/);
  await d.finish('a2');
  await a2;
  await turn();
  assert.deepEqual(d.started, ['a1', 'b1', 'a2']);
});

test('with releaseAfterTurn the held decodes start in the check phase, after this turn', async () => {
  const step = new DecodeStep(true);
  const { started, decode } = decodes();
  step.next(0, decode('a1'));
  await Promise.resolve();
  assert.deepEqual(started, [], 'not started within the same turn');
  await turn();
  assert.deepEqual(started, ['a1']);
});

test('without releaseAfterTurn the held decodes start in the same turn as the request that completes the step', async () => {
  const step = new DecodeStep(false, NO_FALLBACK);
  const { started, decode } = decodes();
  step.next(0, decode('a1'));
  await Promise.resolve();
  await Promise.resolve();
  assert.deepEqual(started, ['a1'], 'started before any timer or check phase ran');
});
