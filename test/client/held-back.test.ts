import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AbortedError, createClient, KoboldClient, type StreamEvent } from '../../src/client/index.ts';
import { within } from '../support/deadline.ts';
import {
  type FakeServer,
  sendJson,
  startFakeHttpServer,
  startSse,
  write,
} from '../support/fake-providers/fake-http-server.ts';

// The rules of src/client/held-back-watch.ts against a scripted Kindling-like server: the stream is silent for a
// while, /check says what the server is doing meanwhile, and then the stream's bytes come. The end-to-end
// behaviour through real proxies is test/integration/buffering-proxy.test.ts.

const TOKENS = ['Once', ' upon', ' a', ' time', ' there', ' was', ' a', ' fox', '.'];

function frames(): string {
  const events = TOKENS.map(
    (token, i) => `id: ${i + 1}\nevent: message\ndata: ${JSON.stringify({ token, finish_reason: null })}\n\n`,
  );
  events.push(`id: ${TOKENS.length + 1}\nevent: message\ndata: {"token":"","finish_reason":"length"}\n\n`);
  return events.join('');
}

/**
 * `/stream` writes its head, stays silent `silenceMs`, then sends `: ping` and every event in one write (a burst)
 * or one event every 10 ms (`spread`). `/check` answers what `checkDuringSilence` says until the events went out,
 * then `done` with the whole text; `/api/v1/generate` answers the whole text.
 */
async function startScripted(options: {
  silenceMs: number;
  spread?: boolean;
  checkDuringSilence: { status: string; text: string };
}): Promise<FakeServer> {
  let sent = false;
  const text = TOKENS.join('');
  return startFakeHttpServer(async (request, _req, res) => {
    const route = `${request.method} ${request.path}`;
    if (route === 'POST /api/extra/generate/check') {
      const record = sent ? { status: 'done', text, finish_reason: 'length' } : options.checkDuringSilence;
      return sendJson(res, 200, { results: [record] });
    }
    if (route === 'POST /api/extra/abort') return sendJson(res, 200, { success: 'true' });
    if (route === 'POST /api/v1/generate') return sendJson(res, 200, { results: [{ text, finish_reason: 'length' }] });
    if (route !== 'POST /api/extra/generate/stream') return sendJson(res, 404, {});
    startSse(res);
    await new Promise((resolve) => setTimeout(resolve, options.silenceMs));
    if (options.spread) {
      for (const frame of frames().split(/(?<=\n\n)/)) {
        await write(res, frame);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    } else {
      await write(res, `: ping\n\n${frames()}`);
    }
    sent = true;
    res.end();
  });
}

async function collect(stream: AsyncIterable<StreamEvent>): Promise<StreamEvent[]> {
  const events: StreamEvent[] = [];
  for await (const event of within(stream, 30_000, 'the stream to end')) events.push(event);
  return events;
}

const degradedOf = (events: StreamEvent[]) => events.filter((e) => e.type === 'status' && e.status === 'degraded');
const textOf = (events: StreamEvent[]) => events.flatMap((e) => (e.type === 'text' ? [e.text] : [])).join('');
const paths = (server: FakeServer, path: string) => server.requests.filter((r) => r.path === path).length;

// heartbeatTimeoutMs 1200: the SDK expects a heartbeat every 400 ms and probes after 500 ms of silence.
const options = (url: string) => ({ baseUrl: url, heartbeatTimeoutMs: 1200, pollIntervalMs: 20 });

test('a slow prompt is not buffering: /check shows no text yet, so the stream is kept and nothing is degraded', async (t) => {
  for (const status of ['queued', 'running']) {
    const server = await startScripted({ silenceMs: 1000, spread: true, checkDuringSilence: { status, text: '' } });
    t.after(() => server.close());
    const client = createClient('kobold', options(server.url));
    assert.ok(client instanceof KoboldClient);
    const events = await collect(client.stream({ prompt: 'x' }));
    assert.equal(textOf(events), TOKENS.join(''));
    assert.deepEqual(degradedOf(events), [], status);
    assert.ok(paths(server, '/api/extra/generate/check') >= 1, `${status}: the silence was looked into`);
    assert.equal(client.degraded, undefined);
  }
});

test('text on the server that the stream does not deliver switches this generation to /check, without loss', async (t) => {
  const server = await startScripted({ silenceMs: 3000, checkDuringSilence: { status: 'running', text: 'Once upon' } });
  t.after(() => server.close());
  const client = createClient('kobold', options(server.url));
  assert.ok(client instanceof KoboldClient);
  const events = await collect(client.stream({ prompt: 'x' }));
  const [degraded] = degradedOf(events);
  assert.ok(degraded?.type === 'status' && degraded.detail?.transport === 'poll');
  assert.match(degraded.detail?.reason ?? '', /held back 9 characters/);
  assert.equal(textOf(events), TOKENS.join(''), 'the polled text continues the streamed text exactly');
  assert.deepEqual(events.at(-1), { type: 'finish', result: { text: TOKENS.join(''), stopReason: 'length' } });
  assert.equal(client.degraded, degraded.detail?.reason);
});

test('a reply that arrives whole after a silence no heartbeat leaves degrades the later generations', async (t) => {
  const server = await startScripted({ silenceMs: 900, checkDuringSilence: { status: 'running', text: '' } });
  t.after(() => server.close());
  const client = createClient('kobold', options(server.url));
  assert.ok(client instanceof KoboldClient);
  const events = await collect(client.stream({ prompt: 'x' }));
  assert.equal(textOf(events), TOKENS.join(''));
  const [degraded] = degradedOf(events);
  assert.ok(degraded?.type === 'status', JSON.stringify(events.map((e) => e.type)));
  assert.match(degraded.detail?.reason ?? '', /arrived at once after \d+ ms of silence/);
  assert.equal(events.at(-2), degraded, 'the note comes just before the finish');

  const next = await collect(client.stream({ prompt: 'y' }));
  assert.equal(next[0]?.type === 'status' && next[0].status, 'degraded');
  assert.equal(textOf(next), TOKENS.join(''));
  assert.equal(paths(server, '/api/extra/generate/stream'), 1, 'the next generation polls');
  assert.equal(paths(server, '/api/v1/generate'), 1);
});

test('koboldTransport "sse" never degrades', async (t) => {
  const server = await startScripted({ silenceMs: 900, checkDuringSilence: { status: 'running', text: 'Once' } });
  t.after(() => server.close());
  const events = await collect(
    createClient('kobold', { ...options(server.url), koboldTransport: 'sse' }).stream({ prompt: 'x' }),
  );
  assert.deepEqual(degradedOf(events), []);
  assert.equal(textOf(events), TOKENS.join(''));
  assert.equal(paths(server, '/api/extra/generate/check'), 0);
});

test('padStream asks the server for a padded start', async (t) => {
  const server = await startScripted({
    silenceMs: 0,
    spread: true,
    checkDuringSilence: { status: 'running', text: '' },
  });
  t.after(() => server.close());
  await collect(createClient('kobold', { baseUrl: server.url, padStream: true }).stream({ prompt: 'x' }));
  assert.equal(server.requests.find((r) => r.path === '/api/extra/generate/stream')?.headers['x-kindling-pad'], '1');
});

test('stopping a generation that went on by polling aborts it on the server and keeps the partial text', async (t) => {
  const server = await startScripted({ silenceMs: 5000, checkDuringSilence: { status: 'running', text: 'Once upon' } });
  t.after(() => server.close());
  const controller = new AbortController();
  const stream = createClient('kobold', options(server.url)).stream(
    { prompt: 'x', genkey: 'KCPPstop' },
    { signal: controller.signal },
  );
  let text = '';
  await assert.rejects(
    (async () => {
      for await (const event of within(stream, 30_000, 'the stream to stop')) {
        if (event.type === 'text') text += event.text;
        if (text !== '') controller.abort();
      }
    })(),
    (error: unknown) => error instanceof AbortedError && error.partial?.text === 'Once upon',
  );
  assert.equal(text, 'Once upon');
  const aborts = server.requests.filter((r) => r.path === '/api/extra/abort');
  assert.deepEqual(
    aborts.map((r) => (r.body as { genkey?: string }).genkey),
    ['KCPPstop'],
  );
});
