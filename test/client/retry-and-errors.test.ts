import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  AbortedError,
  ConnectionRefusedError,
  createClient,
  HttpStatusError,
  isRetryableStatus,
  KindlingClientError,
  NetworkError,
  type StreamEvent,
} from '../../src/client/index.ts';
import { within } from '../support/deadline.ts';
import { startFakeKobold } from '../support/fake-providers/fake-kobold.ts';
import { freePort } from '../support/free-port.ts';

test('503 with retry-after-ms is retried after the server-given delay, then succeeds', async (t) => {
  const fake = await startFakeKobold({
    tokenCount: 5,
    failFirst: { count: 2, status: 503, headers: { 'retry-after-ms': '80' } },
  });
  t.after(() => fake.close());
  const client = createClient('kobold', { baseUrl: fake.url, retry: { baseDelayMs: 1 } });
  const started = Date.now();
  const stream = client.stream({ prompt: 'x' });
  const statuses: StreamEvent[] = [];
  for await (const event of within(stream, 120_000, 'the stream to end'))
    if (event.type === 'status') statuses.push(event);
  assert.equal((await stream.result).text, fake.expectedText(1, 5));
  assert.ok(Date.now() - started >= 160);
  assert.equal(fake.requests.filter((r) => r.path === '/api/extra/generate/stream').length, 3);
  const details = statuses.map((s) => (s.type === 'status' ? s.detail : undefined));
  assert.deepEqual(
    details.map((d) => d?.delayMs),
    [80, 80],
  );
  assert.ok(details.every((d) => d?.error instanceof HttpStatusError && d.error.status === 503));
});

test('a 4xx other than 408/409/429 is thrown at once with the Kobold error message', async (t) => {
  const fake = await startFakeKobold({
    failFirst: { count: 1, status: 400, body: { detail: { msg: 'Error parsing input.', type: 'bad_input' } } },
  });
  t.after(() => fake.close());
  const client = createClient('kobold', { baseUrl: fake.url, retry: { baseDelayMs: 1 } });
  await assert.rejects(client.stream({ prompt: 'x' }).result, (error: unknown) => {
    assert.ok(error instanceof HttpStatusError && error instanceof KindlingClientError);
    assert.equal(error.status, 400);
    assert.equal(error.providerMessage, 'Error parsing input.');
    assert.equal(error.providerType, 'bad_input');
    return true;
  });
  assert.equal(fake.requests.length, 1);
  assert.deepEqual([400, 401, 403, 404, 422, 408, 409, 429, 500, 503].map(isRetryableStatus), [
    false,
    false,
    false,
    false,
    false,
    true,
    true,
    true,
    true,
    true,
  ]);
});

test('retries stop after maxRetries consecutive failures with the last error', async (t) => {
  const fake = await startFakeKobold({ failFirst: { count: 10, status: 429 } });
  t.after(() => fake.close());
  const client = createClient('kobold', { baseUrl: fake.url, retry: { baseDelayMs: 1, maxRetries: 2 } });
  await assert.rejects(
    client.stream({ prompt: 'x' }).result,
    (error: unknown) => error instanceof HttpStatusError && error.status === 429,
  );
  assert.equal(fake.requests.filter((r) => r.path === '/api/extra/generate/stream').length, 3);
});

test('a refused first connect fails at once with ConnectionRefusedError: no server runs there', async () => {
  const port = await freePort();
  let calls = 0;
  const countingFetch: typeof fetch = (input, init) => {
    calls += 1;
    return fetch(input, init);
  };
  for (const api of ['openai', 'kobold'] as const) {
    const client = createClient(api, {
      baseUrl: `http://127.0.0.1:${port}`,
      fetch: countingFetch,
      retry: { baseDelayMs: 1, maxRetries: 2 },
    });
    for (const call of [() => client.generate({ prompt: 'x' }), () => client.stream({ prompt: 'x' }).result]) {
      calls = 0;
      await assert.rejects(call(), (error: unknown) => {
        assert.ok(error instanceof ConnectionRefusedError, String(error));
        assert.ok(error instanceof NetworkError, 'still a NetworkError for callers that branch on it');
        assert.equal(error.origin, `http://127.0.0.1:${port}`);
        assert.match(error.message, /connection refused: nothing is listening at http:\/\/127\.0\.0\.1:/);
        return true;
      });
      assert.equal(calls, 1, `${api}: no retry of a refused first connect`);
    }
  }
});

test('a stream that reached the server keeps retrying when the server then refuses (a restart)', async () => {
  const port = await freePort();
  let calls = 0;
  const restartingFetch: typeof fetch = (input, init) => {
    calls += 1;
    // The first answer is a 503, as from a server going down; after that nothing listens.
    if (calls === 1) return Promise.resolve(new Response('busy', { status: 503, headers: { 'retry-after-ms': '1' } }));
    return fetch(input, init);
  };
  const client = createClient('kobold', {
    baseUrl: `http://127.0.0.1:${port}`,
    fetch: restartingFetch,
    retry: { baseDelayMs: 1, maxRetries: 3 },
  });
  await assert.rejects(client.stream({ prompt: 'x' }).result, ConnectionRefusedError);
  const streamCalls = calls;
  assert.ok(streamCalls >= 4, `the refused reconnects were retried (${streamCalls} requests)`);
});

test('an abort during the backoff wait ends at once with AbortedError and sends nothing more', async (t) => {
  const fake = await startFakeKobold({ failFirst: { count: 10, status: 503, headers: { 'retry-after': '30' } } });
  t.after(() => fake.close());
  const controller = new AbortController();
  const stream = createClient('kobold', { baseUrl: fake.url }).stream({ prompt: 'x' }, { signal: controller.signal });
  const started = Date.now();
  await assert.rejects(
    (async () => {
      for await (const event of within(stream, 120_000, 'the stream to end'))
        if (event.type === 'status' && event.status === 'reconnecting') controller.abort();
    })(),
    AbortedError,
  );
  assert.ok(Date.now() - started < 2000);
  assert.equal(fake.requests.filter((r) => r.path === '/api/extra/generate/stream').length, 1);
});

test('a TextStream can be iterated once; result works without iterating', async (t) => {
  const fake = await startFakeKobold({ tokenCount: 4 });
  t.after(() => fake.close());
  const client = createClient('kobold', { baseUrl: fake.url });
  const unread = client.stream({ prompt: 'x' });
  assert.equal((await unread.result).text, fake.expectedText(1, 4));
  const stream = client.stream({ prompt: 'x' });
  for await (const _ of within(stream, 120_000, 'the stream to end')) {
    // drain
  }
  assert.throws(() => stream[Symbol.asyncIterator](), /only once/);
});
