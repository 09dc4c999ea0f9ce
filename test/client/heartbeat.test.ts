import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createClient, HeartbeatTimeoutError, NetworkError, type StreamEvent } from '../../src/client/index.ts';
import { within } from '../support/deadline.ts';
import { startFakeKobold } from '../support/fake-providers/fake-kobold.ts';
import { startFakeOpenRouter } from '../support/fake-providers/fake-openrouter.ts';

test('a server that goes silent (no data, no pings, socket open) trips the heartbeat; the stream resumes and completes', async (t) => {
  const fake = await startFakeKobold({ tokenCount: 30, tokenIntervalMs: 2, pingIntervalMs: 20, silentAfterEvents: 5 });
  t.after(() => fake.close());
  // Timeouts are generous: the fake shares this process, and on a loaded machine a short one fires spuriously.
  const client = createClient('kobold', { baseUrl: fake.url, heartbeatTimeoutMs: 500, retry: { baseDelayMs: 1 } });
  const started = Date.now();
  const stream = client.stream({ prompt: 'x' });
  const statuses: StreamEvent[] = [];
  for await (const event of within(stream, 120_000, 'the stream to end'))
    if (event.type === 'status') statuses.push(event);
  const result = await stream.result;

  assert.equal(result.text, fake.expectedText(1, 30));
  assert.equal(statuses.length, 1);
  const detail = statuses[0]?.type === 'status' ? statuses[0].detail : undefined;
  assert.ok(detail?.error instanceof HeartbeatTimeoutError);
  assert.ok(detail.error instanceof NetworkError, 'a heartbeat timeout is a (retryable) network error');
  assert.equal(fake.streamConnections, 2);
  // The SDK asks /check during the silence too (is a proxy holding the stream back?): only streams count here.
  const streams = fake.requests.filter((r) => r.path === '/api/extra/generate/stream');
  assert.equal(streams[1]?.headers['last-event-id'], '5');
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 490 && elapsed < 8000, `elapsed ${elapsed} ms`);
});

test('without resume, a silent stream fails with HeartbeatTimeoutError carrying the partial text', async (t) => {
  const fake = await startFakeOpenRouter({ tokenCount: 30, silentAfterTokens: 4, processingComments: 1 });
  t.after(() => fake.close());
  const client = createClient('openai', { baseUrl: fake.url, heartbeatTimeoutMs: 500, retry: { baseDelayMs: 1 } });
  const started = Date.now();
  await assert.rejects(client.generate({ messages: [{ role: 'user', content: 'x' }] }), (error: unknown) => {
    assert.ok(error instanceof HeartbeatTimeoutError);
    assert.equal(error.timeoutMs, 500);
    assert.equal(error.partial?.text, fake.expectedText(1, 4));
    return true;
  });
  assert.ok(Date.now() - started < 8000);
  assert.equal(fake.streamConnections, 1, 'text had been delivered, so the request is not sent again');
});

test('a slow consumer is not mistaken for a silent server', async (t) => {
  const fake = await startFakeOpenRouter({ tokenCount: 2, processingComments: 1 });
  t.after(() => fake.close());
  const client = createClient('openai', { baseUrl: fake.url, heartbeatTimeoutMs: 400 });
  let text = '';
  for await (const event of within(
    client.stream({ messages: [{ role: 'user', content: 'x' }] }),
    120_000,
    'the stream to end',
  )) {
    if (event.type === 'text') {
      text += event.text;
      await new Promise((resolve) => setTimeout(resolve, 800));
    }
  }
  assert.equal(text, fake.expectedText(1, 2));
  assert.equal(fake.streamConnections, 1);
});
