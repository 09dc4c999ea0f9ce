import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { KindlingError } from '../../src/core/kindling-error.ts';
import { DEFAULT_SAMPLING } from '../../src/core/sampling-params.ts';
import { UpstreamEngine } from '../../src/engine/upstream/upstream-engine.ts';
import type { Generation } from '../../src/scheduler/generation.ts';
import { Scheduler } from '../../src/scheduler/scheduler.ts';
import { waitUntil, withDeadline } from '../support/deadline.ts';
import { FakeUpstream, type FakeUpstreamOptions } from '../support/fake-upstream.ts';
import { generationRequest } from '../support/generation-request.ts';

const fakes: FakeUpstream[] = [];
after(() => Promise.all(fakes.map((fake) => fake.close())));

async function upstream(options: FakeUpstreamOptions) {
  const fake = await FakeUpstream.start(options);
  fakes.push(fake);
  const engine = await UpstreamEngine.connect({
    url: fake.url,
    defaultContextSize: 2048,
    slots: 'auto',
    jsonSchemaToGrammar: async () => 'root ::= "{}"',
  });
  const scheduler = new Scheduler(engine, { maxQueue: 8, graceMs: 60_000, maxGenerationMs: 0, maxQueueWaitMs: 0 });
  return { fake, engine, scheduler };
}

async function ended(generation: Generation) {
  await withDeadline(
    (async () => {
      while (!generation.log.ended) await generation.log.waitForPartAfter(generation.log.lastId);
    })(),
    10_000,
    `generation ${generation.key} to end`,
  );
  return { text: generation.log.text, last: generation.log.last };
}

test('over llama-server: its model, context and slots; the prompt goes as its token ids, samplers by its names, usage from it', async () => {
  const { fake, engine, scheduler } = await upstream({ kind: 'llama.cpp', pieces: ['a', 'b', 'c'], finish: 'stop' });
  assert.equal(engine.facts.flavor, 'llama.cpp');
  assert.equal(engine.model.name, 'fake-model');
  assert.equal(engine.model.contextSize, 1024);
  assert.equal(engine.model.vocabularySize, 1000);
  assert.equal(engine.slotCount, 2);
  assert.equal(engine.bosToken, 1);
  const sampling = { ...DEFAULT_SAMPLING, topK: 5, repeatPenalty: 1.1, grammar: 'root ::= "a"', seed: 42 };
  const generation = await scheduler.submit(generationRequest('Hi', { maxTokens: 8, sampling }));
  const { text, last } = await ended(generation);
  assert.equal(text, 'abc');
  assert.equal(last?.type, 'finish');
  if (last?.type !== 'finish') return;
  assert.equal(last.reason, 'eos');
  assert.deepEqual(last.usage, {
    promptTokens: 3,
    cachedPromptTokens: 1,
    completionTokens: 3,
    truncatedPromptTokens: 0,
  });
  const body = fake.bodies[0] as Record<string, unknown>;
  assert.deepEqual(body.prompt, [1, 72, 105]);
  assert.equal(body.model, '/models/fake-model.gguf');
  assert.equal(body.top_k, 5);
  assert.equal(body.repeat_penalty, 1.1);
  assert.equal(body.grammar, 'root ::= "a"');
  assert.equal(body.seed, 42);
  assert.equal(body.max_tokens, 8);
  assert.equal(body.id_slot, 0);
  assert.deepEqual(body.stream_options, { include_usage: true });
  assert.equal(body.stop, undefined, 'stop strings stay with Kindling');
});

test('a stop string is held back and cut by Kindling, and the upstream request is cancelled there', async () => {
  const pieces = ['He', 'llo', ' wor', 'ld', ' and', ' more', ' text'];
  const { fake, scheduler } = await upstream({ kind: 'llama.cpp', pieces, delayMs: 30 });
  const generation = await scheduler.submit(generationRequest('x', { maxTokens: 16, stopStrings: ['lo w'] }));
  const { text, last } = await ended(generation);
  assert.equal(text, 'Hel');
  assert.equal(last?.type === 'finish' && last.reason, 'stop-string');
  await waitUntil(() => fake.abandoned === 1, 2000, 'the upstream to see its request closed');
});

test('aborting a generation closes its upstream request at once', async () => {
  const { fake, scheduler } = await upstream({ kind: 'llama.cpp', pieces: Array(200).fill('z'), delayMs: 20 });
  const generation = await scheduler.submit(generationRequest('x', { maxTokens: 200 }));
  await waitUntil(() => generation.log.text.length >= 2, 5000, 'two tokens');
  const at = Date.now();
  generation.abort('client');
  const { last } = await ended(generation);
  assert.equal(last?.type === 'finish' && last.reason, 'abort');
  await waitUntil(() => fake.abandoned === 1, 2000, 'the upstream to see its request closed');
  assert.ok(Date.now() - at < 1000);
});

test('at max_tokens the upstream usage is in hand before the last token ends the generation', async () => {
  const { scheduler } = await upstream({ kind: 'llama.cpp', pieces: Array(10).fill('q') });
  const generation = await scheduler.submit(generationRequest('x', { maxTokens: 4 }));
  const { text, last } = await ended(generation);
  assert.equal(text, 'qqqq');
  assert.equal(last?.type === 'finish' && last.reason, 'max-tokens');
  assert.equal(last?.type === 'finish' && last.usage.completionTokens, 4);
});

test('over an upstream without a tokenizer (Ollama /v1): the prompt goes as text, token routes are a 501, grammars a 400', async () => {
  const { fake, engine, scheduler } = await upstream({ kind: 'openai', pieces: ['o', 'k'] });
  assert.equal(engine.facts.flavor, 'openai');
  assert.equal(engine.remoteTokenizer.available, false);
  assert.equal(engine.model.contextSize, 2048, 'no context reported: --contextsize (or its default)');
  assert.equal(engine.slotCount, 4);
  const generation = await scheduler.submit(generationRequest('story', { memory: 'Memory. ', maxTokens: 8 }));
  const { text, last } = await ended(generation);
  assert.equal(text, 'ok');
  assert.equal(fake.bodies[0]?.prompt, 'Memory. story');
  assert.equal(last?.type === 'finish' && last.usage.promptTokens, 'Memory. story'.length, 'usage from the upstream');
  await assert.rejects(
    engine.remoteTokenizer.tokenize('hello', { special: false, addBos: false }),
    (error: unknown) => error instanceof KindlingError && error.status === 501 && error.message.includes(fake.url),
  );
  await assert.rejects(
    scheduler.submit(generationRequest('x', { sampling: { ...DEFAULT_SAMPLING, grammar: 'root ::= "a"' } })),
    (error: unknown) =>
      error instanceof KindlingError && error.code === 'not_supported' && error.details.field === 'grammar',
  );
});

test('an upstream that is down, cuts its stream or fails is a typed error naming it, never a crash', async () => {
  const gone = await FakeUpstream.start({ kind: 'llama.cpp' });
  const url = gone.url;
  await gone.close();
  await assert.rejects(
    UpstreamEngine.connect({ url, defaultContextSize: 512, slots: 1, jsonSchemaToGrammar: async () => '' }),
    (error: unknown) => error instanceof KindlingError && error.code === 'unavailable' && error.message.includes(url),
  );
  const cut = await upstream({ kind: 'llama.cpp', pieces: ['a', 'b', 'c', 'd'], cutAfter: 2, delayMs: 5 });
  const broken = await ended(await cut.scheduler.submit(generationRequest('x', { maxTokens: 8 })));
  assert.equal(broken.last?.type, 'error');
  if (broken.last?.type === 'error') {
    assert.equal(broken.last.error.status, 503);
    assert.match(broken.last.error.message, new RegExp(cut.fake.url.replaceAll('.', '\\.')));
  }
  const refused = await upstream({
    kind: 'llama.cpp',
    refuse: { status: 400, message: 'the prompt exceeds the context' },
  });
  const refusal = await ended(await refused.scheduler.submit(generationRequest('x')));
  assert.equal(refusal.last?.type === 'error' && refusal.last.error.status, 400);
  assert.match(refusal.last?.type === 'error' ? refusal.last.error.message : '', /exceeds the context/);
  const failing = await upstream({ kind: 'llama.cpp', refuse: { status: 500, message: 'CUDA out of memory' } });
  const failure = await ended(await failing.scheduler.submit(generationRequest('x')));
  assert.equal(failure.last?.type === 'error' && failure.last.error.code, 'unavailable');
  assert.match(failure.last?.type === 'error' ? failure.last.error.message : '', /CUDA out of memory/);
});
