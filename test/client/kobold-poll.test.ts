import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AbortedError, createClient, HttpStatusError, KoboldClient, type StreamEvent } from '../../src/client/index.ts';
import { stableLength } from '../../src/client/kobold-poll.ts';
import { within } from '../support/deadline.ts';
import { type FakeServer, sendJson, startFakeHttpServer } from '../support/fake-providers/fake-http-server.ts';
import { startFakeKobold } from '../support/fake-providers/fake-kobold.ts';

/**
 * A KoboldCpp without `/api/extra/generate/stream` (as before SSE, or behind a proxy that drops it): `/check`
 * answers `{"results":[{"text": …}]}` with the next snapshot each time it is asked, and the sync generate answers
 * once every snapshot was seen, so what the client was shown does not depend on timing.
 */
async function startScriptedKobold(script: {
  snapshots: string[];
  final: string;
  check404?: boolean;
}): Promise<FakeServer> {
  let next = 0;
  let finish: (() => void) | undefined;
  const allSeen = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const seen = () => {
    next += 1;
    if (next >= script.snapshots.length) finish?.();
  };
  if (script.check404) setTimeout(() => finish?.(), 100);
  return startFakeHttpServer(async (request, _req, res) => {
    const route = `${request.method} ${request.path}`;
    if (route === 'POST /api/v1/generate') {
      await allSeen;
      return sendJson(res, 200, { results: [{ text: script.final, finish_reason: 'stop' }] });
    }
    if (route === 'POST /api/extra/generate/check' && !script.check404) {
      sendJson(res, 200, { results: [{ text: script.snapshots[Math.min(next, script.snapshots.length - 1)] }] });
      return seen();
    }
    // KoboldCpp's answer for a route it does not have.
    res.writeHead(404, { 'content-type': 'text/html' });
    res.end('Error: HTTP Server is running, but this endpoint does not exist. Please check the URL.');
  });
}

const paths = (server: FakeServer, path: string) => server.requests.filter((r) => r.path === path);

async function collect(stream: AsyncIterable<StreamEvent>): Promise<StreamEvent[]> {
  const events: StreamEvent[] = [];
  for await (const event of within(stream, 60_000, 'the stream to end')) events.push(event);
  return events;
}

const texts = (events: StreamEvent[]) => events.flatMap((e) => (e.type === 'text' ? [e.text] : []));

test('poll(): KoboldCpp text arrives through /check while one sync generate runs, and adds up to its answer', async (t) => {
  const fake = await startFakeKobold({ flavor: 'koboldcpp', tokenCount: 60, tokenIntervalMs: 5 });
  t.after(() => fake.close());
  const client = createClient('kobold', { baseUrl: fake.url, pollIntervalMs: 10 });
  assert.ok(client instanceof KoboldClient);
  const stream = client.poll({ prompt: 'x', genkey: 'KCPPpoll1' });
  const events = await collect(stream);
  const result = await stream.result;
  assert.equal(result.text, fake.expectedText(1, 60));
  assert.equal(result.stopReason, 'length');
  assert.equal(texts(events).join(''), result.text);
  assert.ok(texts(events).length >= 3, `${texts(events).length} text events: the text was shown as it grew`);
  assert.deepEqual(events.at(-1), { type: 'finish', result });
  assert.equal(paths(fake, '/api/v1/generate').length, 1);
  assert.equal(paths(fake, '/api/extra/generate/stream').length, 0);
  const checks = paths(fake, '/api/extra/generate/check');
  assert.ok(checks.length >= 3 && checks.every((r) => (r.body as { genkey?: string }).genkey === 'KCPPpoll1'));
});

test('koboldTransport "poll" makes stream() poll; our server\'s /check status becomes a processing status', async (t) => {
  const fake = await startFakeKobold({ tokenCount: 30, tokenIntervalMs: 5 });
  t.after(() => fake.close());
  const client = createClient('kobold', { baseUrl: fake.url, koboldTransport: 'poll', pollIntervalMs: 10 });
  const stream = client.stream({ prompt: 'x', maxTokens: 30 });
  const events = await collect(stream);
  assert.equal((await stream.result).text, fake.expectedText(1, 30));
  assert.equal(paths(fake, '/api/extra/generate/stream').length, 0);
  const firstText = events.findIndex((e) => e.type === 'text');
  const processing = events.findIndex((e) => e.type === 'status' && e.status === 'processing');
  assert.ok(processing !== -1 && processing < firstText, JSON.stringify(events.slice(0, 3)));
  // A poll that lands before the generation starts reads "queued" first (a loaded machine); either way no status
  // is reported twice in a row.
  const statuses = events.flatMap((e) => (e.type === 'status' ? [JSON.stringify(e)] : []));
  assert.ok(statuses.length >= 1 && statuses.length <= 2, statuses.join(' '));
  assert.ok(
    statuses.every((s, i) => i === 0 || s !== statuses[i - 1]),
    `a repeated status is reported once: ${statuses.join(' ')}`,
  );
});

test('a server without an SSE endpoint is polled instead (auto), and from then on without asking for SSE again', async (t) => {
  const server = await startScriptedKobold({
    snapshots: ['Once', 'Once upon', 'Once upon a time'],
    final: 'Once upon a time',
  });
  t.after(() => server.close());
  const client = createClient('kobold', { baseUrl: server.url, pollIntervalMs: 5 });
  const first = client.stream({ prompt: 'x' });
  const events = await collect(first);
  assert.equal((await first.result).text, 'Once upon a time');
  assert.equal(texts(events).join(''), 'Once upon a time');
  assert.ok(texts(events).length >= 2, 'text arrived in steps');
  assert.equal(paths(server, '/api/extra/generate/stream').length, 1);
  assert.equal(paths(server, '/api/v1/generate').length, 1);

  const second = client.stream({ prompt: 'y' });
  await collect(second);
  assert.equal(paths(server, '/api/extra/generate/stream').length, 1, 'the missing endpoint is remembered');
  assert.equal(paths(server, '/api/v1/generate').length, 2);
});

test('koboldTransport "sse" does not fall back: the missing endpoint is an HttpStatusError 404', async (t) => {
  const server = await startScriptedKobold({ snapshots: ['a'], final: 'a' });
  t.after(() => server.close());
  const client = createClient('kobold', { baseUrl: server.url, koboldTransport: 'sse' });
  await assert.rejects(collect(client.stream({ prompt: 'x' })), (error: unknown) => {
    assert.ok(error instanceof HttpStatusError);
    assert.equal(error.status, 404);
    return true;
  });
  assert.equal(paths(server, '/api/v1/generate').length, 0);
});

test('a snapshot is shown only up to where a stop sequence may begin, so trim_stop never takes shown text back', async (t) => {
  const server = await startScriptedKobold({
    snapshots: ['Hel', 'Hello', 'Hello\n', 'Hello\nUs', 'Hello\nUser: and more'],
    final: 'Hello',
  });
  t.after(() => server.close());
  const client = createClient('kobold', { baseUrl: server.url, koboldTransport: 'poll', pollIntervalMs: 5 });
  const stream = client.stream({ prompt: 'x', stop: ['\nUser:'] });
  const events = await collect(stream);
  assert.deepEqual(texts(events), ['Hel', 'lo']);
  assert.equal((await stream.result).text, 'Hello');
  assert.ok(paths(server, '/api/extra/generate/check').length >= 5, 'every snapshot, stop included, was polled');
});

test('a server without /check is asked once; the sync answer still arrives as the text', async (t) => {
  const server = await startScriptedKobold({ snapshots: [], final: 'The end.', check404: true });
  t.after(() => server.close());
  const client = createClient('kobold', { baseUrl: server.url, pollIntervalMs: 5 });
  assert.ok(client instanceof KoboldClient);
  const stream = client.poll({ prompt: 'x' });
  const events = await collect(stream);
  assert.deepEqual(texts(events), ['The end.']);
  assert.equal(paths(server, '/api/extra/generate/check').length, 1);
});

test('aborting a polled generation aborts it on the server, stops polling and keeps the partial text', async (t) => {
  const fake = await startFakeKobold({ flavor: 'koboldcpp', tokenCount: 400, tokenIntervalMs: 3 });
  t.after(() => fake.close());
  const client = createClient('kobold', { baseUrl: fake.url, koboldTransport: 'poll', pollIntervalMs: 10 });
  const controller = new AbortController();
  const stream = client.stream({ prompt: 'x', genkey: 'KCPPpollabort' }, { signal: controller.signal });
  let received = '';
  await assert.rejects(
    (async () => {
      for await (const event of within(stream, 60_000, 'the stream to end')) {
        if (event.type === 'text') received += event.text;
        if (received.length > 0) controller.abort();
      }
    })(),
    (error: unknown) => {
      assert.ok(error instanceof AbortedError);
      assert.equal(error.partial?.stopReason, 'abort');
      assert.equal(error.partial?.text, received);
      return true;
    },
  );
  assert.deepEqual(fake.aborts, ['KCPPpollabort']);
  assert.equal(fake.generations.get('KCPPpollabort')?.done, true);
  const checks = paths(fake, '/api/extra/generate/check').length;
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal(paths(fake, '/api/extra/generate/check').length, checks, 'no poll after the abort');
});

test('leaving the loop of a polled stream early aborts the generation on the server', async (t) => {
  const fake = await startFakeKobold({ flavor: 'koboldcpp', tokenCount: 400, tokenIntervalMs: 3 });
  t.after(() => fake.close());
  const client = createClient('kobold', { baseUrl: fake.url, pollIntervalMs: 10 });
  assert.ok(client instanceof KoboldClient);
  const stream = client.poll({ prompt: 'x', genkey: 'KCPPpollbreak' });
  for await (const event of within(stream, 60_000, 'the stream to end')) if (event.type === 'text') break;
  // Leaving the loop waits for the sync request to have told the server.
  assert.deepEqual(fake.aborts, ['KCPPpollbreak']);
  await assert.rejects(stream.result, AbortedError);
});

test('polling keeps the retry policy: a 503 is retried with backoff, a 401 is thrown with an empty partial', async (t) => {
  const busy = await startFakeKobold({ tokenCount: 8, failFirst: { count: 1, status: 503 } });
  const locked = await startFakeKobold({
    tokenCount: 8,
    failFirst: { count: 9, status: 401, body: { detail: { msg: 'wrong password', type: 'unauthorized' } } },
  });
  t.after(() => Promise.all([busy.close(), locked.close()]));
  const options = { koboldTransport: 'poll' as const, pollIntervalMs: 5, retry: { baseDelayMs: 1 } };
  const retried = createClient('kobold', { ...options, baseUrl: busy.url }).stream({ prompt: 'x' });
  assert.equal((await retried.result).text, busy.expectedText(1, 8));
  assert.equal(paths(busy, '/api/v1/generate').length, 2);

  const refused = createClient('kobold', { ...options, baseUrl: locked.url }).stream({ prompt: 'x' });
  await assert.rejects(refused.result, (error: unknown) => {
    assert.ok(error instanceof HttpStatusError);
    assert.equal(error.status, 401);
    assert.equal(error.providerMessage, 'wrong password');
    assert.deepEqual(error.partial, { text: '', stopReason: 'error' });
    return true;
  });
  assert.equal(paths(locked, '/api/v1/generate').length, 1, 'a 401 is not retried');
});

test('stableLength stops before a full stop sequence and before a tail that may become one', () => {
  assert.equal(stableLength('Hello', ['\nUser:']), 5);
  assert.equal(stableLength('Hello\nUs', ['\nUser:']), 5);
  assert.equal(stableLength('Hello\nUser: more', ['\nUser:']), 5);
  assert.equal(stableLength('a###b', ['###', '\n']), 1);
  assert.equal(stableLength('ab#', ['###']), 2);
  assert.equal(stableLength('abc', ['']), 3);
});
