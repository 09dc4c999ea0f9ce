import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClient, KoboldClient, type StreamEvent } from '../../src/client/index.ts';
import type { RunningServer } from '../../src/main.ts';
import { startBufferingProxy } from '../support/buffering-proxy.ts';
import { within } from '../support/deadline.ts';
import { startNginxProxy } from '../support/nginx-proxy.ts';
import { slowTestModelPath } from '../support/test-model.ts';
import { banEndTokens, postJson, startTestServer } from '../support/test-server.ts';

// The SDK through proxies that buffer event streams, in front of the real server: a Node proxy that holds each
// response until it ends (or 16 KB), and nginx with proxy_buffering on and our X-Accel-Buffering ignored. The
// stream is noticed held back, the SDK polls /check instead, and the text still grows while the server
// generates, ending exactly as the server's.

let server: RunningServer;

/** The server's record of a generation, asked directly (not through the proxy). */
async function check(genkey: string): Promise<{ status: string; text: string }> {
  const { status, body } = await postJson(`${server.url}/api/extra/generate/check`, { genkey });
  assert.ok(status === 200 && body.results?.[0], `/check answered ${status} ${JSON.stringify(body)}`);
  return body.results[0];
}

interface Observed {
  events: Array<{ event: StreamEvent; at: number }>;
  /** When the server first reported the generation done. */
  doneAt: number;
  text: string;
  serverText: string;
}

/** Streams one generation through `baseUrl` while the server's own /check is watched for the moment it ends. */
async function observe(client: KoboldClient, genkey: string): Promise<Observed> {
  const request = { prompt: 'Once upon a time', seed: 7, maxTokens: 1500, extra: { logit_bias: banEndTokens(server) } };
  let doneAt = Number.POSITIVE_INFINITY;
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      const record = await check(genkey);
      if (record.status === 'done' && doneAt === Number.POSITIVE_INFINITY) doneAt = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  const events: Observed['events'] = [];
  const stream = client.stream({ ...request, genkey });
  try {
    for await (const event of within(stream, 120_000, 'the generation through the proxy to end'))
      events.push({ event, at: Date.now() });
  } finally {
    watching = false;
    await watcher;
  }
  const result = await stream.result;
  return { events, doneAt, text: result.text, serverText: (await check(genkey)).text };
}

function assertLiveAndExact(observed: Observed, label: string): void {
  const { events, doneAt } = observed;
  const texts = events.flatMap(({ event }) => (event.type === 'text' ? [event.text] : []));
  assert.equal(texts.join(''), observed.text, `${label}: the text events add up to the result`);
  assert.equal(observed.text, observed.serverText, `${label}: the result is exactly the server's text`);
  assert.ok(observed.text.length > 200, `${label}: ${observed.text.length} characters`);
  const degraded = events.findIndex(({ event }) => event.type === 'status' && event.status === 'degraded');
  assert.ok(degraded !== -1, `${label}: a degraded status: ${JSON.stringify(events.slice(0, 4))}`);
  const status = events[degraded]?.event;
  assert.ok(status?.type === 'status' && status.detail?.transport === 'poll' && status.detail.reason, label);
  assert.ok((events[degraded]?.at ?? 0) < doneAt, `${label}: degraded before the generation ended`);
  const live = events.filter(({ event, at }, i) => i > degraded && event.type === 'text' && at < doneAt);
  assert.ok(live.length >= 3, `${label}: ${live.length} text events arrived while the server was generating`);
  assert.equal(events.at(-1)?.event.type, 'finish', label);
}

/** A stream that was never degraded: ids on its text events (SSE, not /check), most of them before the end. */
function assertStreamedLive(observed: Observed, label: string): void {
  assert.equal(observed.text, observed.serverText, label);
  const degraded = observed.events.filter(({ event }) => event.type === 'status' && event.status === 'degraded');
  assert.deepEqual(degraded, [], label);
  const texts = observed.events.filter(({ event }) => event.type === 'text');
  assert.ok(
    texts.every(({ event }) => event.type === 'text' && event.id !== undefined),
    `${label}: SSE events`,
  );
  const live = texts.filter(({ at }) => at < observed.doneAt).length;
  assert.ok(live > texts.length / 2, `${label}: ${live} of ${texts.length} text events before the end`);
}

describe('the SDK through proxies that buffer event streams', { timeout: 300_000 }, () => {
  before(async () => {
    server = await startTestServer({ modelPath: slowTestModelPath(), contextSize: 4096, heartbeatMs: 300 });
  });
  after(async () => {
    await server?.close();
  });

  const heldBack = [
    {
      name: 'a Node proxy that holds each response until it ends or 16 KB',
      key: 'NODE',
      start: (url: string) => startBufferingProxy({ target: url }),
    },
    // nginx's own gzip (on for event streams, as many sites set it) holds its output until a deflate buffer fills.
    {
      name: 'nginx compressing event streams',
      key: 'NGXGZ',
      start: (url: string) => startNginxProxy(url, { gzip: true }),
    },
  ];
  for (const proxyCase of heldBack) {
    it(`${proxyCase.name}: the stream is noticed held back, and polling shows the text live, exactly`, async (t) => {
      const proxy = await proxyCase.start(server.url);
      t.after(() => proxy.close());
      // 900 ms of heartbeat timeout: the server's 300 ms heartbeat is what the SDK then expects.
      const client = createClient('kobold', { baseUrl: proxy.url, heartbeatTimeoutMs: 900, pollIntervalMs: 50 });
      assert.ok(client instanceof KoboldClient);
      const first = await observe(client, `BUF-${proxyCase.key}-1`);
      assertLiveAndExact(first, 'held-back stream');
      assert.match(client.degraded ?? '', /held back \d+ characters/);
      t.diagnostic(`${proxyCase.key}: ${client.degraded}`);

      // Later generations on this client poll from the start.
      const second = await observe(client, `BUF-${proxyCase.key}-2`);
      assertLiveAndExact(second, 'the next generation');
      assert.equal(second.events[0]?.event.type, 'status', 'the next generation starts with the degraded status');
    });
  }

  it('nginx with proxy_buffering on and X-Accel-Buffering ignored passes events on as they come: no degradation', async (t) => {
    // Measured: nginx 1.22's buffering fills its buffers only while the client reads slower than the server
    // writes; each event still leaves at once. The SDK must see a live stream and keep it.
    const proxy = await startNginxProxy(server.url);
    t.after(() => proxy.close());
    const client = createClient('kobold', { baseUrl: proxy.url, heartbeatTimeoutMs: 900, pollIntervalMs: 50 });
    assert.ok(client instanceof KoboldClient);
    const observed = await observe(client, 'BUF-NGX');
    assertStreamedLive(observed, 'nginx');
    assert.equal(client.degraded, undefined);
  });

  it('a direct connection is not taken for a buffering one', async () => {
    const client = createClient('kobold', { baseUrl: server.url, heartbeatTimeoutMs: 900, pollIntervalMs: 50 });
    assert.ok(client instanceof KoboldClient);
    assertStreamedLive(await observe(client, 'BUF-direct'), 'direct');
    assert.equal(client.degraded, undefined);
  });
});
