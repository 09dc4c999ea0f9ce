import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeEngine } from '../../src/engine/fake/fake-engine.ts';
import type { Generation } from '../../src/scheduler/generation.ts';
import { Scheduler } from '../../src/scheduler/scheduler.ts';
import { withDeadline } from '../support/deadline.ts';
import { generationRequest } from '../support/generation-request.ts';

const request = generationRequest;

const finished = async (generation: Generation) => {
  await withDeadline(
    (async () => {
      while (!generation.log.ended) await generation.log.waitForPartAfter(generation.log.lastId);
    })(),
    10_000,
    `generation ${generation.key} to end`,
  );
  return generation.log.last;
};

test('16 requests on 4 slots start in submission order (FIFO, no request overtakes another)', async () => {
  const engine = new FakeEngine({ slots: 4, tokenDelayMs: 2 });
  const scheduler = new Scheduler(engine, { maxQueue: 16, graceMs: 60_000, maxGenerationMs: 0, maxQueueWaitMs: 0 });
  // Submitted in one turn, as concurrent requests arrive; admission keeps their order.
  const prompts = Array.from({ length: 16 }, (_, i) => `p${String(i).padStart(2, '0')}`);
  const generations = await Promise.all(
    prompts.map((prompt, i) => scheduler.submit(request(prompt, { maxTokens: 3 + (i % 3) }))),
  );
  assert.equal(scheduler.busySlots, 4);
  assert.equal(scheduler.queueLength, 12);
  assert.deepEqual(
    generations.slice(4).map((g) => scheduler.positionOf(g)),
    Array.from({ length: 12 }, (_, i) => i + 1),
  );
  await Promise.all(generations.map(finished));
  assert.deepEqual(
    engine.started.map((s) => s.prompt),
    prompts,
  );
  for (const [i, g] of generations.entries())
    assert.equal(g.log.text, (prompts[i] as string).slice(-1).repeat(g.request.maxTokens));
});

test('past the queue limit submit fails with a 503 that says when to retry', async () => {
  const scheduler = new Scheduler(new FakeEngine({ slots: 1, tokenDelayMs: 50 }), {
    maxQueue: 1,
    graceMs: 1000,
    maxGenerationMs: 0,
    maxQueueWaitMs: 0,
  });
  await scheduler.submit(request('a', { maxTokens: 100 }));
  await scheduler.submit(request('b'));
  await assert.rejects(
    scheduler.submit(request('c')),
    (error: any) => error.status === 503 && error.details.retryAfterSeconds > 0,
  );
  return scheduler.drain();
});

test('a request goes to the free slot whose cache shares the longest prefix', async () => {
  const engine = new FakeEngine({ slots: 3, tokenDelayMs: 0 });
  const scheduler = new Scheduler(engine, { maxQueue: 4, graceMs: 1000, maxGenerationMs: 0, maxQueueWaitMs: 0 });
  await Promise.all(
    ['alpha story', 'beta story', 'gamma story'].map(async (p) =>
      finished(await scheduler.submit(request(p, { maxTokens: 1 }))),
    ),
  );
  const slotOf = new Map(engine.started.map((s) => [s.prompt, s.slot]));
  const next = await scheduler.submit(request('beta story, continued', { maxTokens: 1 }));
  await finished(next);
  assert.equal(next.slot, slotOf.get('beta story'));
  assert.equal(engine.counters.promptTokensReused, 'beta story'.length);
});

test('an engine failure mid-generation ends that generation with an error part, and the slot is reused', async () => {
  const engine = new FakeEngine({
    slots: 1,
    tokenDelayMs: 0,
    failAfter: { tokens: 3, message: 'GPU fell off the bus' },
  });
  const scheduler = new Scheduler(engine, { maxQueue: 4, graceMs: 1000, maxGenerationMs: 0, maxQueueWaitMs: 0 });
  const failing = await scheduler.submit(request('x', { maxTokens: 10 }));
  const next = await scheduler.submit(request('y', { maxTokens: 2 }));
  const last = await finished(failing);
  assert.equal(last?.type, 'error');
  assert.equal(failing.log.text, 'xxx');
  const nextLast = await finished(next);
  assert.equal(nextLast?.type === 'finish' && nextLast.reason, 'max-tokens', 'the next request runs in the freed slot');
  assert.equal(next.log.text, 'yy');
  assert.equal(scheduler.busySlots, 0);
});

test('--max-gen-seconds and the queue wait limit end generations', async () => {
  const scheduler = new Scheduler(new FakeEngine({ slots: 1, tokenDelayMs: 5 }), {
    maxQueue: 4,
    graceMs: 1000,
    maxGenerationMs: 60,
    maxQueueWaitMs: 20,
  });
  const running = await scheduler.submit(request('a', { maxTokens: 10_000 }));
  const waiting = await scheduler.submit(request('b', { maxTokens: 1 }));
  const waited = await finished(waiting);
  assert.equal(waited?.type, 'error');
  assert.equal(waited?.type === 'error' && waited.error.code, 'timeout');
  const ran = await finished(running);
  assert.equal(ran?.type === 'finish' && ran.reason, 'abort');
  assert.ok(running.log.text.length < 10_000);
});

test('stop strings split across tokens end the generation and never leak', async () => {
  const engine = new FakeEngine({ slots: 1, tokenDelayMs: 0 });
  const scheduler = new Scheduler(engine, { maxQueue: 4, graceMs: 1000, maxGenerationMs: 0, maxQueueWaitMs: 0 });
  const g = await scheduler.submit(request('Z', { maxTokens: 50, stopStrings: ['ZZZ'], trimStop: true }));
  const last = await finished(g);
  assert.equal(last?.type === 'finish' && last.reason, 'stop-string');
  assert.equal(g.log.text, '');
  const kept = await scheduler.submit(request('Q', { maxTokens: 50, stopStrings: ['QQ'], trimStop: false }));
  await finished(kept);
  assert.equal(kept.log.text, 'QQ');
});

test('a generation keeps its prompt as tokens only: the texts are not held until its grace ends', async () => {
  const scheduler = new Scheduler(new FakeEngine({ slots: 1, tokenDelayMs: 0 }), {
    maxQueue: 4,
    graceMs: 60_000,
    maxGenerationMs: 0,
    maxQueueWaitMs: 0,
  });
  const g = await scheduler.submit(request('a long story', { maxTokens: 2, key: 'K1' }));
  await finished(g);
  assert.equal(scheduler.find('internal', 'K1'), g, 'still findable during its grace');
  assert.deepEqual(
    Object.keys(g.request).filter((name) => name === 'prompt' || name === 'memory'),
    [],
  );
  assert.equal(g.promptTokens.length > 0, true);
});
