import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createClient, HttpStatusError, ProviderStreamError, type StreamEvent } from '../../src/client/index.ts';
import { within } from '../support/deadline.ts';
import { startFakeAnthropic } from '../support/fake-providers/fake-anthropic.ts';

test('Anthropic stream: text_delta events become text, pings are ignored, usage and stop reason are mapped', async (t) => {
  const fake = await startFakeAnthropic({ apiKey: 'sk-ant-test', tokenCount: 18, pingEvery: 4 });
  t.after(() => fake.close());
  const client = createClient('anthropic', { baseUrl: fake.url, apiKey: 'sk-ant-test', model: 'claude-fake-1' });
  const stream = client.stream({
    system: 'Be kind.',
    messages: [
      { role: 'system', content: 'Stay in character.' },
      { role: 'user', content: 'Hello there' },
    ],
    maxTokens: 100,
    stop: ['END'],
  });
  const all: StreamEvent[] = [];
  for await (const event of within(stream, 120_000, 'the stream to end')) all.push(event);
  const result = await stream.result;

  assert.deepEqual(
    all.map((e) => e.type).filter((type, i, a) => type !== a[i - 1]),
    ['text', 'finish'],
  );
  assert.equal(result.text, fake.expectedText(1, 18));
  assert.equal(result.stopReason, 'stop', 'end_turn maps to stop');
  assert.equal(result.usage?.completionTokens, 18);
  assert.ok((result.usage?.promptTokens ?? 0) > 0);

  const sent = fake.requests[0];
  assert.equal(sent?.path, '/v1/messages');
  assert.equal(sent?.headers['x-api-key'], 'sk-ant-test');
  assert.equal(sent?.headers['anthropic-version'], '2023-06-01');
  assert.equal(sent?.headers['authorization'], undefined);
  assert.equal(sent?.headers['anthropic-dangerous-direct-browser-access'], undefined, 'not a browser');
  assert.deepEqual(sent?.body, {
    model: 'claude-fake-1',
    max_tokens: 100,
    system: 'Be kind.\n\nStay in character.',
    messages: [{ role: 'user', content: 'Hello there' }],
    stop_sequences: ['END'],
    stream: true,
  });
});

test('Anthropic max_tokens stop maps to length; a prompt becomes one user message; max_tokens has a default', async (t) => {
  const fake = await startFakeAnthropic({ tokenCount: 20 });
  t.after(() => fake.close());
  const client = createClient('anthropic', { baseUrl: `${fake.url}/v1`, model: 'claude-fake-1', browserAccess: true });
  const short = await client.generate({ prompt: 'Hi', maxTokens: 7 });
  assert.equal(short.text, fake.expectedText(1, 7));
  assert.equal(short.stopReason, 'length');
  assert.deepEqual((fake.requests[0]?.body as Record<string, unknown> | undefined)?.['messages'], [
    { role: 'user', content: 'Hi' },
  ]);
  assert.equal(fake.requests[0]?.headers['anthropic-dangerous-direct-browser-access'], 'true');
  await client.generate({ prompt: 'Hi' });
  assert.equal((fake.requests[1]?.body as Record<string, unknown> | undefined)?.['max_tokens'], 1024);
});

test('Anthropic mid-stream `event: error` (overloaded_error) becomes ProviderStreamError with the partial text', async (t) => {
  const fake = await startFakeAnthropic({ tokenCount: 20, errorAfterTokens: 5 });
  t.after(() => fake.close());
  const client = createClient('anthropic', { baseUrl: fake.url, model: 'claude-fake-1', retry: { baseDelayMs: 1 } });
  await assert.rejects(client.generate({ prompt: 'Hi' }), (error: unknown) => {
    assert.ok(error instanceof ProviderStreamError);
    assert.equal(error.providerType, 'overloaded_error');
    assert.equal(error.providerMessage, 'Overloaded');
    assert.equal(error.partial?.text, fake.expectedText(1, 5));
    return true;
  });
  // Text had been delivered and Anthropic cannot resume, so re-sending would duplicate it: one request only.
  assert.equal(fake.requests.length, 1);
});

test('Anthropic overloaded_error before any text is re-sent (nothing could be duplicated), up to maxRetries', async (t) => {
  const fake = await startFakeAnthropic({ tokenCount: 6, errorAfterTokens: 0 });
  t.after(() => fake.close());
  const client = createClient('anthropic', {
    baseUrl: fake.url,
    model: 'claude-fake-1',
    retry: { baseDelayMs: 1, maxRetries: 2 },
  });
  await assert.rejects(client.generate({ prompt: 'Hi' }), ProviderStreamError);
  assert.equal(fake.requests.length, 3);
});

test('Anthropic 529 overloaded responses are retried with backoff until one succeeds', async (t) => {
  const early = await startFakeAnthropic({ tokenCount: 6, failFirst: { count: 2, status: 529 } });
  t.after(() => early.close());
  const client = createClient('anthropic', {
    baseUrl: early.url,
    model: 'claude-fake-1',
    retry: { baseDelayMs: 1, maxRetries: 3 },
  });
  const result = await client.generate({ prompt: 'Hi' });
  assert.equal(result.text, early.expectedText(1, 6));
  assert.equal(early.requests.length, 3);
});

test('Anthropic HTTP error envelopes surface the provider message', async (t) => {
  const fake = await startFakeAnthropic({ apiKey: 'right' });
  t.after(() => fake.close());
  const client = createClient('anthropic', { baseUrl: fake.url, apiKey: 'wrong', model: 'claude-fake-1' });
  await assert.rejects(client.generate({ prompt: 'Hi' }), (error: unknown) => {
    assert.ok(error instanceof HttpStatusError);
    assert.equal(error.status, 401);
    assert.equal(error.providerType, 'authentication_error');
    assert.equal(error.providerMessage, 'invalid x-api-key');
    return true;
  });
});
