import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import {
  ConnectionRefusedError,
  createClient,
  HttpStatusError,
  type KoboldClient,
  type StreamEvent,
  type TextStream,
} from '../../src/client/index.ts';
import { within } from '../support/deadline.ts';
import { startFaultProxy } from '../support/fault-proxy.ts';
import { freePort } from '../support/free-port.ts';
import { slowTestModelPath } from '../support/test-model.ts';
import { postJson, startTestServer } from '../support/test-server.ts';

const RETRY = { maxRetries: 4, baseDelayMs: 5, maxDelayMs: 50 };
// The cut offset is sized for a plain stream; gzip would move it.
const PLAIN = { 'accept-encoding': 'identity' };

async function deadUrl(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`;
}

/** Reads a stream to its end, checking that every text event's id is newer than the last (nothing replayed). */
async function readChecked(stream: TextStream) {
  const events: StreamEvent[] = [];
  let lastId = 0;
  for await (const event of within(stream, 120_000, 'the stream to end')) {
    events.push(event);
    if (event.type !== 'text' || event.id === undefined) continue;
    const id = Number(event.id);
    assert.ok(id > lastId, `event id ${event.id} after ${lastId}`);
    lastId = id;
  }
  const text = events.flatMap((e) => (e.type === 'text' ? [e.text] : [])).join('');
  const reconnects = events.filter((e) => e.type === 'status' && e.status === 'reconnecting').length;
  const firstReconnect = events.findIndex((e) => e.type === 'status' && e.status === 'reconnecting');
  const textBeforeReconnect = events
    .slice(0, firstReconnect < 0 ? 0 : firstReconnect)
    .flatMap((e) => (e.type === 'text' ? [e.text] : []))
    .join('');
  return { result: await stream.result, text, reconnects, textBeforeReconnect };
}

/** The server's own record of a generation: its whole text, by key. */
async function generatedText(baseUrl: string, genkey: string): Promise<string> {
  const check = (await postJson(`${baseUrl}/api/extra/generate/check`, { genkey })).body.results[0];
  assert.equal(check.status, 'done');
  return check.text;
}

test('several base URLs against the real server', async (t) => {
  const server = await startTestServer({ modelPath: slowTestModelPath() });
  t.after(() => server.close());

  await t.test('first URL refuses: Kobold SSE, sync generate and info go to the second', async () => {
    const dead = await deadUrl();
    const client = createClient('kobold', { baseUrl: [dead, server.url], retry: RETRY }) as KoboldClient;
    const started = Date.now();
    const run = await readChecked(client.stream({ prompt: 'Once', seed: 4, maxTokens: 30, genkey: 'FO-DEAD-1' }));
    assert.ok(run.result.text.length > 0);
    assert.equal(run.result.text, await generatedText(server.url, 'FO-DEAD-1'));
    assert.equal(run.text, run.result.text);
    assert.equal(run.reconnects, 1, 'one hop from the dead URL');
    assert.ok(Date.now() - started < 30_000);

    // The client stays on the node that answered: no more hops, and sync generate and info answer from it.
    const sync = await client.generate({ prompt: 'Twice', seed: 5, maxTokens: 10, genkey: 'FO-DEAD-2' });
    assert.equal(sync.text, await generatedText(server.url, 'FO-DEAD-2'));
    const info = await client.info();
    assert.equal(typeof info.kindling, 'string');
    assert.equal(info.resumable, true);

    // A fresh client starts on the dead URL again: the sync generate and the info routes also fail over.
    const fresh = createClient('kobold', { baseUrl: [dead, server.url], retry: RETRY });
    assert.deepEqual(await fresh.listModels(), await client.listModels());
    const again = createClient('kobold', { baseUrl: [dead, server.url], retry: RETRY });
    const synced = await again.generate({ prompt: 'Thrice', seed: 6, maxTokens: 10, genkey: 'FO-DEAD-3' });
    assert.equal(synced.text, await generatedText(server.url, 'FO-DEAD-3'));
  });

  await t.test('first URL refuses: OpenAI SSE and model list go to the second', async () => {
    const dead = await deadUrl();
    const client = createClient('openai', { baseUrl: [dead, server.url], model: 'any', retry: RETRY });
    const models = await client.listModels();
    assert.ok(models.length >= 1, JSON.stringify(models));
    // The model list moved the client to the live URL, so its stream starts there.
    const after = await readChecked(client.stream({ prompt: 'Once', seed: 7, maxTokens: 20 }));
    assert.equal(after.reconnects, 0);
    assert.ok(after.result.text.length > 0);
    const fresh = createClient('openai', { baseUrl: [dead, server.url], model: 'any', retry: RETRY });
    const run = await readChecked(fresh.stream({ prompt: 'Once', seed: 7, maxTokens: 20, genkey: 'FO-DEAD-O' }));
    assert.equal(run.reconnects, 1);
    assert.equal(run.text, run.result.text);
    assert.ok(run.result.text.length > 0);
    assert.equal(run.textBeforeReconnect, '', 'nothing came from the dead URL');
  });

  await t.test('a stream cut mid-way on URL 1 resumes on URL 2 with its genkey and Last-Event-ID', async (t) => {
    // One cut, after a few hundred bytes (some tokens delivered), then the proxy would pass everything: the
    // connection count shows that the resumed attempt did not go back through it.
    const proxy = await startFaultProxy({ target: server.url, seed: 3, minBytes: 700, maxBytes: 900, maxCuts: 1 });
    t.after(() => proxy.close());
    const client = createClient('kobold', { baseUrl: [proxy.url, server.url], retry: RETRY, headers: PLAIN });
    const stream = client.stream({ prompt: 'Once upon a time', seed: 2, maxTokens: 120, genkey: 'FO-CUT-K' });
    const run = await readChecked(stream);
    assert.equal(proxy.cuts, 1);
    assert.equal(proxy.connections, 1, 'the resumed attempt went to URL 2, not back through the proxy');
    assert.equal(run.reconnects, 1);
    assert.equal(run.result.text, await generatedText(server.url, 'FO-CUT-K'));
    assert.equal(run.text, run.result.text, 'every token exactly once');
    assert.ok(run.result.text.length > 20, run.result.text);
    // The cut came mid-stream: URL 1 had delivered part of the text, URL 2 the rest.
    assert.ok(run.textBeforeReconnect.length > 0, 'no text before the cut');
    assert.ok(run.textBeforeReconnect.length < run.result.text.length, 'the cut came after the last token');
    assert.ok(['length', 'stop'].includes(run.result.stopReason), run.result.stopReason);
  });

  await t.test('an OpenAI stream with resume on, cut on URL 1, resumes on URL 2', async (t) => {
    const proxy = await startFaultProxy({ target: server.url, seed: 4, minBytes: 900, maxBytes: 1100, maxCuts: 1 });
    t.after(() => proxy.close());
    const client = createClient('openai', {
      baseUrl: [proxy.url, server.url],
      model: 'any',
      resume: true,
      retry: RETRY,
      headers: PLAIN,
    });
    const request = { prompt: 'Once upon a time', seed: 8, maxTokens: 120, genkey: 'FO-CUT-O' };
    const run = await readChecked(client.stream(request));
    assert.equal(proxy.cuts, 1);
    assert.equal(proxy.connections, 1);
    assert.equal(run.reconnects, 1);
    assert.equal(run.text, run.result.text);
    assert.equal(run.result.text, await generatedText(server.url, 'FO-CUT-O'));
    assert.ok(run.textBeforeReconnect.length > 0, 'no text before the cut');
    assert.ok(run.textBeforeReconnect.length < run.result.text.length, 'the cut came after the last token');
  });

  await t.test('a node answering 503 (shutting down) is left for the next URL', async (t) => {
    const closing = await statusServer(503, { detail: { msg: 'server shutting down', type: 'service_unavailable' } });
    t.after(() => closing.close());
    const client = createClient('kobold', { baseUrl: [closing.url, server.url], retry: RETRY });
    const run = await readChecked(client.stream({ prompt: 'Once', seed: 9, maxTokens: 20, genkey: 'FO-503' }));
    assert.equal(closing.hits(), 1);
    assert.equal(run.reconnects, 1);
    assert.equal(run.result.text, await generatedText(server.url, 'FO-503'));
  });

  await t.test('a 500 is retried on the same URL, not failed over', async (t) => {
    const broken = await statusServer(500, { detail: { msg: 'model error', type: 'model_error' } });
    t.after(() => broken.close());
    const client = createClient('kobold', { baseUrl: [broken.url, server.url], retry: { ...RETRY, maxRetries: 2 } });
    const error = await client.stream({ prompt: 'x', maxTokens: 5 }).result.catch((e: unknown) => e);
    assert.ok(error instanceof HttpStatusError, String(error));
    assert.equal(error.status, 500);
    assert.equal(broken.hits(), 3, 'the first try and two retries, all on URL 1');
  });
});

test('every URL refuses: ConnectionRefusedError naming all of them, at once', async () => {
  const urls = [await deadUrl(), await deadUrl(), await deadUrl()];
  const client = createClient('kobold', { baseUrl: urls, retry: { maxRetries: 4, baseDelayMs: 1000 } }) as KoboldClient;
  for (const call of [
    () => client.stream({ prompt: 'x' }).result,
    () => client.generate({ prompt: 'x' }),
    () => client.info(),
  ]) {
    const started = Date.now();
    const error = await call().then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(error instanceof ConnectionRefusedError, String(error));
    assert.deepEqual([...error.origins].sort(), [...urls].sort());
    assert.match(error.message, /connection refused: nothing is listening at /);
    // No backoff (1 s here) between refusals before any node answered.
    assert.ok(Date.now() - started < 900, `${Date.now() - started} ms`);
  }
  const openai = createClient('openai', { baseUrl: urls.slice(0, 2), model: 'm', retry: { baseDelayMs: 1000 } });
  const error = await openai.stream({ prompt: 'x' }).result.catch((e: unknown) => e);
  assert.ok(error instanceof ConnectionRefusedError);
  assert.equal(error.origins.length, 2);
});

test('one base URL behaves as before: refused at once, origin named', async () => {
  const url = await deadUrl();
  const client = createClient('kobold', { baseUrl: url });
  const error = await client.stream({ prompt: 'x' }).result.catch((e: unknown) => e);
  assert.ok(error instanceof ConnectionRefusedError);
  assert.equal(error.origin, url);
  assert.deepEqual(error.origins, [url]);
});

/** A node that answers every request with `status` and `body`. */
async function statusServer(status: number, body: unknown) {
  let hits = 0;
  const server = createServer((req, res) => {
    hits += 1;
    req.resume();
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits: () => hits,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
