import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KindlingError } from '../../src/core/kindling-error.ts';
import { FakeEngine } from '../../src/engine/fake/fake-engine.ts';
import { DEFAULT_QOS } from '../../src/scheduler/fair-queue.ts';
import type { Generation, GenerationOrigin, GenerationQos, GenerationQuota } from '../../src/scheduler/generation.ts';
import { Scheduler } from '../../src/scheduler/scheduler.ts';
import { withDeadline } from '../support/deadline.ts';
import { generationRequest } from '../support/generation-request.ts';

const OPTIONS = { maxQueue: 64, graceMs: 1000, maxGenerationMs: 0, maxQueueWaitMs: 0 };
const origin = (principal: string, qos: Partial<GenerationQos> = {}): GenerationOrigin => ({
  principal,
  protocol: 'kobold',
  qos: { ...DEFAULT_QOS, ...qos },
});

const finished = (generation: Generation) =>
  withDeadline(
    (async () => {
      while (!generation.log.ended) await generation.log.waitForPartAfter(generation.log.lastId);
      return generation.log.last;
    })(),
    10_000,
    `generation ${generation.key} to end`,
  );

test('fair share: key B single request starts right after the one running, ahead of key A queued nine', async () => {
  const engine = new FakeEngine({ slots: 1, tokenDelayMs: 1 });
  const scheduler = new Scheduler(engine, OPTIONS);
  const a = [];
  for (let i = 0; i < 10; i++)
    a.push(await scheduler.submit(generationRequest(`a${i}`, { maxTokens: 2 }), origin('key:A')));
  const b = await scheduler.submit(generationRequest('b0', { maxTokens: 2 }), origin('key:B'));
  assert.equal(scheduler.positionOf(b), 1, 'next to start');
  assert.deepEqual(
    a.slice(1).map((g) => scheduler.positionOf(g)),
    [2, 3, 4, 5, 6, 7, 8, 9, 10],
  );
  assert.equal(b.log.partsAfter(0).find((p) => p.part.type === 'queued')?.part.type, 'queued');
  await Promise.all([...a, b].map(finished));
  assert.deepEqual(engine.started.map((s) => s.prompt).slice(0, 3), ['a0', 'b0', 'a1']);
});

test('positions are truthful under fair share, priority and caps: position N starts N-th from now', async () => {
  const engine = new FakeEngine({ slots: 2, tokenDelayMs: 1 });
  const scheduler = new Scheduler(engine, OPTIONS);
  const all: Generation[] = [];
  const submit = async (prompt: string, o: GenerationOrigin) =>
    all.push(await scheduler.submit(generationRequest(prompt, { maxTokens: 3 }), o));
  for (let i = 0; i < 4; i++) await submit(`a${i}`, origin('key:A'));
  for (let i = 0; i < 3; i++) await submit(`b${i}`, origin('key:B', { maxConcurrent: 1 }));
  await submit('c0', origin('key:C', { priority: 'batch' }));
  await submit('d0', origin('addr:10.0.0.1'));
  const promised = new Map(all.map((g) => [engine.detokenize(g.promptTokens), scheduler.positionOf(g)]));
  await Promise.all(all.map(finished));
  const started = engine.started.map((s) => s.prompt);
  // Two were running when the positions were read; the one at position N is the (N + 2)-th to start.
  for (const [prompt, position] of promised) {
    if (position === 0) assert.ok(started.indexOf(prompt) < 2, `${prompt} was running`);
    else
      assert.equal(
        started.indexOf(prompt),
        position + 1,
        `${prompt}: promised position ${position}; started ${started}`,
      );
  }
  for (const generation of all) {
    const positions = generation.log
      .partsAfter(0)
      .flatMap(({ part }) => (part.type === 'queued' ? [part.position] : []));
    if (positions.length > 0) assert.equal(positions.at(-1), 1, 'the last announced place before starting is 1');
  }
});

test('max_concurrent caps the slots a key holds while the others run; max_queued refuses with 429', async () => {
  const engine = new FakeEngine({ slots: 3, tokenDelayMs: 2 });
  const scheduler = new Scheduler(engine, OPTIONS);
  const capped = origin('key:A', { maxConcurrent: 1, maxQueued: 2 });
  const a = [];
  for (let i = 0; i < 3; i++) a.push(await scheduler.submit(generationRequest(`a${i}`, { maxTokens: 20 }), capped));
  assert.deepEqual(scheduler.loadOf('key:A'), { queued: 2, running: 1 });
  assert.equal(scheduler.busySlots, 1, 'two slots stay free for others');
  await assert.rejects(
    scheduler.submit(generationRequest('a3'), capped),
    (error: unknown) =>
      error instanceof KindlingError && error.status === 429 && (error.details.retryAfterSeconds ?? 0) >= 1,
  );
  const b = await scheduler.submit(generationRequest('b0', { maxTokens: 2 }), origin('key:B'));
  assert.equal(b.status, 'running', 'another key starts at once in a free slot');
  await Promise.all([...a, b].map(finished));
  assert.equal(scheduler.loadOf('key:A').running, 0);
});

test('a batch request waits behind interactive ones until it ages, then goes first', async () => {
  const engine = new FakeEngine({ slots: 1, tokenDelayMs: 5 });
  const scheduler = new Scheduler(engine, { ...OPTIONS, batchAgingMs: 150 });
  const first = await scheduler.submit(generationRequest('i0', { maxTokens: 10 }), origin('key:I'));
  const batch = await scheduler.submit(
    generationRequest('batch', { maxTokens: 2 }),
    origin('key:B', { priority: 'batch' }),
  );
  const chats = [];
  for (let i = 1; i < 6; i++)
    chats.push(await scheduler.submit(generationRequest(`i${i}`, { maxTokens: 10 }), origin(`key:I${i}`)));
  assert.equal(scheduler.positionOf(batch), 6, 'behind every interactive request');
  await Promise.all([first, batch, ...chats].map(finished));
  const started = engine.started.map((s) => s.prompt);
  const at = started.indexOf('batch');
  assert.ok(at > 1 && at < started.length - 1, `aged past some interactive work, not starved: ${started}`);
  const announced = batch.log.partsAfter(0).flatMap(({ part }) => (part.type === 'queued' ? [part.position] : []));
  assert.ok(announced.length >= 2 && (announced.at(-1) as number) < 6, `its queued parts moved up: ${announced}`);
});

/** A quota that allows `tokens` tokens in all and records what the scheduler told it. */
function fakeQuota(tokens: number) {
  const calls: string[] = [];
  let reserved = 0;
  const quota: GenerationQuota = {
    check: () => calls.push('check'),
    admit(promptTokens, maxTokens) {
      calls.push(`admit ${promptTokens} ${maxTokens}`);
      const budget = Math.min(maxTokens, tokens - reserved - promptTokens);
      if (budget < 1) throw new KindlingError('rate_limited', 'no tokens left', { retryAfterSeconds: 7 });
      reserved += promptTokens + budget;
      return budget;
    },
    settle: (used) => calls.push(`settle ${used}`),
  };
  return { quota, calls };
}

test('the token budget caps max tokens at submission: the generation ends as max-tokens and is settled', async () => {
  const scheduler = new Scheduler(new FakeEngine({ slots: 1, tokenDelayMs: 0 }), OPTIONS);
  const { quota, calls } = fakeQuota(10);
  const generation = await scheduler.submit(generationRequest('abcd', { maxTokens: 50 }), origin('key:A', { quota }));
  const last = await finished(generation);
  assert.equal(generation.maxTokens, 6);
  assert.equal(last?.type === 'finish' && last.reason, 'max-tokens');
  assert.equal(generation.log.text.length, 6);
  assert.deepEqual(calls, ['check', 'check', 'admit 4 50', 'settle 10']);
  await assert.rejects(
    scheduler.submit(generationRequest('abcd'), origin('key:A', { quota })),
    (error: unknown) => error instanceof KindlingError && error.details.retryAfterSeconds === 7,
  );
});

test('a generation aborted while queued settles its reservation with nothing used', async () => {
  const scheduler = new Scheduler(new FakeEngine({ slots: 1, tokenDelayMs: 2 }), OPTIONS);
  await scheduler.submit(generationRequest('x', { maxTokens: 100 }));
  const { quota, calls } = fakeQuota(1000);
  const queued = await scheduler.submit(generationRequest('y', { maxTokens: 5 }), origin('key:A', { quota }));
  queued.abort('client');
  await finished(queued);
  assert.deepEqual(calls.slice(-1), ['settle 0']);
  return scheduler.drain();
});
