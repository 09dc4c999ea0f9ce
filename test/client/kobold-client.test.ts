import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AbortedError, createClient, type StreamEvent } from '../../src/client/index.ts';
import { within } from '../support/deadline.ts';
import { startFakeKobold } from '../support/fake-providers/fake-kobold.ts';
import { startFaultProxy } from '../support/fault-proxy.ts';

test('Kobold stream on our server: queue comments become statuses (then processing), frames become text with ids, body carries the genkey', async (t) => {
  const fake = await startFakeKobold({ tokenCount: 12, queuedComments: 2, pingIntervalMs: 5, tokenIntervalMs: 4 });
  t.after(() => fake.close());
  const client = createClient('kobold', { baseUrl: `${fake.url}/api/v1` });
  const stream = client.stream({
    prompt: 'Once',
    system: 'A tale.',
    maxTokens: 12,
    seed: 5,
    temperature: 0.8,
    extra: { dry_multiplier: 0.8 },
  });
  const all: StreamEvent[] = [];
  for await (const event of within(stream, 120_000, 'the stream to end')) all.push(event);
  const result = await stream.result;

  assert.deepEqual(
    all.filter((e) => e.type === 'status'),
    [
      { type: 'status', status: 'queued', detail: { queuePosition: 2 } },
      { type: 'status', status: 'queued', detail: { queuePosition: 1 } },
      { type: 'status', status: 'processing' },
    ],
  );
  assert.deepEqual(
    all.slice(0, 2).map((e) => e.type),
    ['status', 'status'],
  );
  const texts = all.flatMap((e) => (e.type === 'text' ? [e] : []));
  assert.deepEqual(
    texts.map((e) => e.id),
    Array.from({ length: 12 }, (_, i) => String(i + 1)),
  );
  assert.equal(result.text, fake.expectedText(5, 12));
  assert.equal(result.stopReason, 'length');
  const body = fake.requests[0]?.body as Record<string, unknown>;
  assert.equal(fake.requests[0]?.path, '/api/extra/generate/stream');
  assert.match(String(body['genkey']), /^KCPP\w+$/);
  assert.deepEqual(
    { ...body, genkey: 'K' },
    {
      prompt: 'Once',
      memory: 'A tale.',
      max_length: 12,
      temperature: 0.8,
      sampler_seed: 5,
      trim_stop: true,
      genkey: 'K',
      dry_multiplier: 0.8,
    },
  );
});

test('Kobold chat messages are rendered as a transcript with a stop sequence for the next user turn', async (t) => {
  const fake = await startFakeKobold({ tokenCount: 3 });
  t.after(() => fake.close());
  await createClient('kobold', { baseUrl: fake.url }).generate({
    messages: [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello.' },
      { role: 'user', content: 'Name?' },
    ],
    stop: ['###'],
  });
  const body = fake.requests[0]?.body as Record<string, unknown>;
  assert.equal(body['prompt'], 'You are terse.\nUser: Hi\nAssistant: Hello.\nUser: Name?\nAssistant:');
  assert.deepEqual(body['stop_sequence'], ['###', '\nUser:']);
});

test('aborting a Kobold stream cancels the fetch, calls /api/extra/abort with the genkey, and keeps the partial text', async (t) => {
  const fake = await startFakeKobold({ tokenCount: 400, tokenIntervalMs: 3 });
  t.after(() => fake.close());
  const controller = new AbortController();
  const stream = createClient('kobold', { baseUrl: fake.url }).stream(
    { prompt: 'x', genkey: 'KCPPabort1' },
    { signal: controller.signal },
  );
  let received = '';
  await assert.rejects(
    (async () => {
      for await (const event of within(stream, 120_000, 'the stream to end')) {
        if (event.type === 'text') received += event.text;
        if (received.length > 0 && !controller.signal.aborted) controller.abort();
      }
    })(),
    (error: unknown) => {
      assert.ok(error instanceof AbortedError);
      assert.equal(error.partial?.stopReason, 'abort');
      assert.equal(error.partial?.text, received);
      return true;
    },
  );
  // The driver awaits the abort notification before it throws, so the server has it now.
  assert.deepEqual(fake.aborts, ['KCPPabort1']);
  assert.equal(fake.generations.get('KCPPabort1')?.events.at(-1)?.finishReason, 'abort');
  assert.equal(fake.streamConnections, 1, 'an abort is never retried');
});

test('leaving the loop early aborts the Kobold generation on the server too', async (t) => {
  const fake = await startFakeKobold({ tokenCount: 400, tokenIntervalMs: 3 });
  t.after(() => fake.close());
  const stream = createClient('kobold', { baseUrl: fake.url }).stream({ prompt: 'x', genkey: 'KCPPbreak' });
  for await (const event of within(stream, 120_000, 'the stream to end')) if (event.type === 'text') break;
  assert.deepEqual(fake.aborts, ['KCPPbreak']);
  await assert.rejects(stream.result, AbortedError);
});

test('Kobold sync generate, info, token count and model list', async (t) => {
  const fake = await startFakeKobold({ tokenCount: 7 });
  t.after(() => fake.close());
  const client = createClient('kobold', { baseUrl: fake.url });
  const result = await client.generate({ prompt: 'x' });
  assert.equal(result.text, fake.expectedText(1, 7));
  assert.equal(result.stopReason, 'length');
  assert.equal(fake.requests[0]?.path, '/api/v1/generate');
  assert.deepEqual(await client.listModels(), ['koboldcpp/fake-model']);
  assert.equal(await client.countTokens?.('one two three'), 3);
  const info = await client.info?.();
  assert.equal(info?.model, 'koboldcpp/fake-model');
  assert.equal(info?.server, 'KoboldCpp');
  assert.equal(info?.kindling, '0.1.0');
  assert.equal(info?.resumable, true);
  assert.equal(info?.maxContextLength, 4096);
});

test('aborting a sync Kobold generate also aborts it on the server', async (t) => {
  const fake = await startFakeKobold({ tokenCount: 400, tokenIntervalMs: 3 });
  t.after(() => fake.close());
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 50);
  await assert.rejects(
    createClient('kobold', { baseUrl: fake.url }).generate(
      { prompt: 'x', genkey: 'KCPPsync' },
      { signal: controller.signal },
    ),
    AbortedError,
  );
  assert.deepEqual(fake.aborts, ['KCPPsync']);
});

test('KoboldCpp 1.76 stream format: "null" finish reasons and \\u-escaped text, no ids', async (t) => {
  const fake = await startFakeKobold({ flavor: 'koboldcpp', tokenCount: 20, seed: 4 });
  t.after(() => fake.close());
  const stream = createClient('kobold', { baseUrl: fake.url }).stream({ prompt: 'x' });
  const ids: Array<string | undefined> = [];
  for await (const event of within(stream, 120_000, 'the stream to end')) if (event.type === 'text') ids.push(event.id);
  const result = await stream.result;
  assert.equal(result.text, fake.expectedText(4, 20));
  assert.equal(result.stopReason, 'length');
  assert.ok(ids.every((id) => id === undefined));
});

test('a cut KoboldCpp stream (no resume) is recovered through /check: the server-side text, stop reason "disconnected"', async (t) => {
  const fake = await startFakeKobold({ flavor: 'koboldcpp', tokenCount: 300, tokenIntervalMs: 2 });
  const proxy = await startFaultProxy({ target: fake.url, minBytes: 900, maxBytes: 900, maxCuts: 1 });
  t.after(() => Promise.all([proxy.close(), fake.close()]));
  const client = createClient('kobold', { baseUrl: proxy.url, pollIntervalMs: 20, retry: { baseDelayMs: 1 } });
  const stream = client.stream({ prompt: 'x', genkey: 'KCPPcut' });
  let beforeCut = '';
  let reconnects = 0;
  for await (const event of within(stream, 120_000, 'the stream to end')) {
    if (event.type === 'text' && reconnects === 0) beforeCut += event.text;
    if (event.type === 'status' && event.status === 'reconnecting') reconnects += 1;
  }
  const result = await stream.result;
  const serverText = fake.generations.get('KCPPcut')?.text ?? '';
  assert.equal(proxy.cuts, 1);
  assert.equal(result.stopReason, 'disconnected');
  assert.equal(result.text, serverText, 'the recovered text is what the server generated before it noticed the cut');
  assert.equal(reconnects, 1);
  assert.ok(beforeCut.length > 0 && result.text.startsWith(beforeCut) && result.text.length >= beforeCut.length);
  assert.ok(fake.expectedText(1, 300).startsWith(result.text) && result.text.length < fake.expectedText(1, 300).length);
  assert.equal(fake.streamConnections, 1, 'the stream was not re-sent (that would start a second generation)');
  assert.ok(
    fake.requests.some(
      (r) => r.path === '/api/extra/generate/check' && (r.body as { genkey?: string }).genkey === 'KCPPcut',
    ),
  );
});

test('a sync generate whose connection is cut is recovered through /check instead of generating twice', async (t) => {
  const fake = await startFakeKobold({ tokenCount: 30, tokenIntervalMs: 3 });
  const proxy = await startFaultProxy({ target: fake.url, minBytes: 10, maxBytes: 10, maxCuts: 1 });
  t.after(() => Promise.all([proxy.close(), fake.close()]));
  const client = createClient('kobold', { baseUrl: proxy.url, pollIntervalMs: 15, retry: { baseDelayMs: 1 } });
  // The first connection is cut after 10 response bytes: the server is still generating, the client gets nothing.
  const result = await client.generate({ prompt: 'x', genkey: 'KCPPsynccut' });
  assert.equal(proxy.cuts, 1);
  assert.equal(result.text, fake.expectedText(1, 30));
  assert.equal(result.stopReason, 'length');
  assert.equal(fake.requests.filter((r) => r.path === '/api/v1/generate').length, 1);
});
