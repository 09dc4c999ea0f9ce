import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { StreamPart } from '../../src/core/stream-part.ts';
import { FakeEngine } from '../../src/engine/fake/fake-engine.ts';
import type { Generation } from '../../src/scheduler/generation.ts';
import { Scheduler } from '../../src/scheduler/scheduler.ts';
import { DEFAULT_SCHEDULER_OPTIONS } from '../../src/scheduler/scheduler-options.ts';
import { withDeadline } from '../support/deadline.ts';
import { generationRequest } from '../support/generation-request.ts';

const CONTEXT = 64;

async function run(prompt: string, maxTokens: number): Promise<{ generation: Generation; last: StreamPart }> {
  const scheduler = new Scheduler(new FakeEngine({ contextSize: CONTEXT }), DEFAULT_SCHEDULER_OPTIONS);
  const generation = await scheduler.submit(generationRequest(prompt, { maxTokens }));
  await withDeadline(
    (async () => {
      while (!generation.log.ended) await generation.log.waitForPartAfter(generation.log.lastId);
    })(),
    10_000,
    'the generation to end',
  );
  return { generation, last: generation.log.last! };
}

test('max_length past the context is capped once, at submit, and the generation ends with the context full', async () => {
  const { generation, last } = await run('x'.repeat(200), 1000);
  // KoboldCpp's reserve: min(context - 4, 16) tokens stay for the prompt.
  assert.equal(generation.maxTokens, CONTEXT - 16);
  assert.equal(generation.promptTokens.length, 16);
  assert.equal(generation.log.text, 'x'.repeat(CONTEXT - 16));
  assert.equal(last.type === 'finish' && last.reason, 'context-full');
});

test('max_length that fits ends as max-tokens, with the prompt trimmed to the room it leaves', async () => {
  const { generation, last } = await run('y'.repeat(200), 10);
  assert.equal(generation.maxTokens, 10);
  assert.equal(generation.promptTokens.length, CONTEXT - 10);
  assert.equal(generation.log.text, 'y'.repeat(10));
  assert.equal(last.type === 'finish' && last.reason, 'max-tokens');
});
