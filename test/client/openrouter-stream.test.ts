import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createClient, HttpStatusError, ProviderStreamError, type StreamEvent } from '../../src/client/index.ts';
import { within } from '../support/deadline.ts';
import { startFakeOpenRouter } from '../support/fake-providers/fake-openrouter.ts';

async function events(stream: AsyncIterable<StreamEvent>): Promise<StreamEvent[]> {
  const out: StreamEvent[] = [];
  for await (const event of within(stream, 120_000, 'the stream to end')) out.push(event);
  return out;
}

test('OpenRouter chat stream: PROCESSING comments become a status, deltas the text, the usage chunk the usage, [DONE] the end', async (t) => {
  const fake = await startFakeOpenRouter({ apiKey: 'sk-or-test', tokenCount: 25, processingComments: 3 });
  t.after(() => fake.close());
  const client = createClient('openai', {
    baseUrl: `${fake.url}/api/v1`,
    apiKey: 'sk-or-test',
    model: 'fake/model-a',
    headers: { 'x-title': 'Kindling' },
  });
  const stream = client.stream({ system: 'Be brief.', messages: [{ role: 'user', content: 'Tell a story' }] });
  const all = await events(stream);
  const result = await stream.result;

  assert.deepEqual(all[0], { type: 'status', status: 'processing', detail: { message: 'OPENROUTER PROCESSING' } });
  assert.equal(all.filter((e) => e.type === 'status').length, 1, 'repeated keepalives are reported once');
  const text = all.flatMap((e) => (e.type === 'text' ? [e.text] : [])).join('');
  assert.equal(text, fake.expectedText(1, 25));
  assert.equal(result.text, text);
  assert.equal(result.stopReason, 'stop');
  assert.equal(result.usage?.completionTokens, 25);
  assert.ok((result.usage?.promptTokens ?? 0) > 0);
  assert.deepEqual(all.at(-1), { type: 'finish', result });

  const sent = fake.requests[0];
  assert.equal(sent?.path, '/api/v1/chat/completions');
  assert.equal(sent?.headers['authorization'], 'Bearer sk-or-test');
  assert.equal(sent?.headers['x-title'], 'Kindling');
  assert.deepEqual(sent?.body, {
    model: 'fake/model-a',
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Tell a story' },
    ],
    stream: true,
    stream_options: { include_usage: true },
  });
});

test('a bare prompt goes to /completions with the sampler fields that were set, and nothing else', async (t) => {
  const fake = await startFakeOpenRouter({ tokenCount: 8, processingComments: 0 });
  t.after(() => fake.close());
  const client = createClient('openai', { baseUrl: fake.url, model: 'm', includeUsage: false });
  const result = await client.generate({
    prompt: 'Once upon',
    maxTokens: 5,
    temperature: 0.7,
    topK: 40,
    stop: ['\n\n'],
    extra: { provider: { order: ['A'] } },
  });
  assert.equal(result.text, fake.expectedText(1, 5));
  assert.equal(result.usage, undefined);
  assert.equal(fake.requests[0]?.path, '/v1/completions');
  assert.deepEqual(fake.requests[0]?.body, {
    model: 'm',
    prompt: 'Once upon',
    stream: true,
    max_tokens: 5,
    temperature: 0.7,
    top_k: 40,
    stop: ['\n\n'],
    provider: { order: ['A'] },
  });
});

test('a mid-stream OpenRouter error object ends the stream with ProviderStreamError and keeps the partial text', async (t) => {
  const fake = await startFakeOpenRouter({ tokenCount: 20, errorAfterTokens: 6, processingComments: 1 });
  t.after(() => fake.close());
  const client = createClient('openai', { baseUrl: fake.url, model: 'm' });
  const received: string[] = [];
  const stream = client.stream({ messages: [{ role: 'user', content: 'x' }] });
  await assert.rejects(
    (async () => {
      for await (const event of within(stream, 120_000, 'the stream to end'))
        if (event.type === 'text') received.push(event.text);
    })(),
    (error: unknown) => {
      assert.ok(error instanceof ProviderStreamError);
      assert.equal(error.providerMessage, 'Provider disconnected unexpectedly');
      assert.equal(error.code, 502);
      assert.equal(error.partial?.text, fake.expectedText(1, 6));
      return true;
    },
  );
  assert.equal(received.join(''), fake.expectedText(1, 6));
  await assert.rejects(stream.result, ProviderStreamError);
  assert.equal(fake.requests.length, 1, 'an in-band provider error is not retried');
});

test('KoboldCpp 1.76 quirks: "null" finish_reason strings and a [DONE] without its blank line still finish cleanly', async (t) => {
  const fake = await startFakeOpenRouter({
    tokenCount: 12,
    koboldcppQuirks: true,
    processingComments: 0,
    finishReason: 'length',
  });
  t.after(() => fake.close());
  const client = createClient('openai', { baseUrl: fake.url });
  const result = await client.stream({ messages: [{ role: 'user', content: 'x' }] }).result;
  assert.equal(result.text, fake.expectedText(1, 12));
  assert.equal(result.stopReason, 'length');
});

test('HTTP errors carry the status and the provider message; 401 is not retried', async (t) => {
  const fake = await startFakeOpenRouter({ apiKey: 'right' });
  t.after(() => fake.close());
  const client = createClient('openai', { baseUrl: fake.url, apiKey: 'wrong', retry: { baseDelayMs: 1 } });
  await assert.rejects(client.generate({ prompt: 'x' }), (error: unknown) => {
    assert.ok(error instanceof HttpStatusError);
    assert.equal(error.status, 401);
    assert.equal(error.providerMessage, 'No auth credentials found');
    assert.equal(error.retryable, false);
    assert.equal(error.message, 'HTTP 401: No auth credentials found');
    return true;
  });
  assert.equal(fake.requests.length, 1);
});

test('listModels reads /models', async (t) => {
  const fake = await startFakeOpenRouter({ models: ['a/b', 'c/d'] });
  t.after(() => fake.close());
  assert.deepEqual(await createClient('openai', { baseUrl: `${fake.url}/v1/` }).listModels(), ['a/b', 'c/d']);
});

test('resumable stream (our server): frames repeating the last id (usage, [DONE]) are kept, not taken for replays', async (t) => {
  const fake = await startFakeOpenRouter({ resumable: true, tokenCount: 10, processingComments: 0 });
  t.after(() => fake.close());
  const client = createClient('openai', { baseUrl: fake.url, model: 'm', resume: true });
  const result = await client.stream({ messages: [{ role: 'user', content: 'x' }] }).result;
  assert.equal(result.text, fake.expectedText(1, 10));
  assert.equal(result.usage?.completionTokens, 10);
  assert.match(String(fake.requests[0]?.headers['x-kindling-stream']), /^ks-/);
  assert.equal(fake.requests[0]?.headers['last-event-id'], undefined);
});
