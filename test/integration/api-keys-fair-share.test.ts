import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../../src/main.ts';
import { withDeadline } from '../support/deadline.ts';
import { bearer, keyFile, testKey } from '../support/key-file.ts';
import { envelopeProblem } from '../support/protocol-envelope.ts';
import { openStream, type StreamCapture } from '../support/sse-capture.ts';
import { slowTestModelPath } from '../support/test-model.ts';
import { postJson, startTestServer } from '../support/test-server.ts';

const STREAM = '/api/extra/generate/stream';
const body = (prompt: string, maxLength: number) => ({ prompt, max_length: maxLength, ban_eos_token: true });

/** A stream and the moment its first token event arrived: with one slot, the order generations started in. */
interface Started {
  name: string;
  stream: StreamCapture;
  startedAt: Promise<number>;
}

async function start(server: RunningServer, name: string, key: string, maxLength: number): Promise<Started> {
  // The name is the genkey too, so /check can find each one.
  const stream = await openStream(`${server.url}${STREAM}`, { ...body(name, maxLength), genkey: name }, bearer(key));
  assert.equal(stream.response.status, 200, `${name}: ${stream.text}`);
  // NaN for a stream the test cancels before it starts (no unhandled rejection); startOrder then fails on it.
  const startedAt = stream
    .until((text) => /^data: /m.test(text), 60_000)
    .then(
      () => Date.now(),
      () => Number.NaN,
    );
  return { name, stream, startedAt };
}

async function startOrder(streams: Started[]): Promise<string[]> {
  const times = await withDeadline(Promise.all(streams.map((s) => s.startedAt)), 60_000, 'every stream to start');
  assert.ok(!times.some(Number.isNaN), 'every stream started');
  await Promise.all(streams.map((s) => withDeadline(s.stream.done, 60_000, `${s.name} to end`)));
  return streams
    .map((s, i) => ({ name: s.name, at: times[i] as number }))
    .sort((a, b) => a.at - b.at)
    .map((s) => s.name);
}

describe('fair share and priority between API keys (one slot)', () => {
  let server: RunningServer;
  before(async () => {
    const keys = keyFile([
      { name: 'flood', key: testKey('flood') },
      { name: 'single', key: testKey('single') },
      { name: 'nightly', key: testKey('nightly'), priority: 'batch' },
      { name: 'few', key: testKey('few'), max_queued: 1 },
    ]);
    server = await startTestServer({
      modelPath: slowTestModelPath(),
      contextSize: 1024,
      parallel: 1,
      maxQueue: 32,
      apiKeysPath: keys.path,
      batchAgingMs: 1000,
    });
  });
  after(async () => server.close());

  test("key A queues 10, key B then sends 1: B's starts before A's third", async () => {
    const flood: Started[] = [];
    // A0 runs long enough (~700 ms) for the whole queue to be built behind it.
    for (let i = 0; i < 10; i++) flood.push(await start(server, `A${i}`, 'flood', i === 0 ? 400 : 40));
    const single = await start(server, 'B0', 'single', 10);
    const position = async (genkey: string, key: string) =>
      (await postJson(`${server.url}/api/extra/generate/check`, { genkey }, bearer(key))).body.results[0]
        .queue_position;
    assert.equal(await position('B0', 'single'), 1, '/check: B is next');
    assert.equal(await position('A1', 'flood'), 2);
    assert.equal(await position('A9', 'flood'), 10, 'the 9 of A that wait and B start before it');
    const order = await startOrder([...flood, single]);
    assert.ok(order.indexOf('B0') < order.indexOf('A2'), `start order: ${order.join(' ')}`);
    assert.equal(order.indexOf('B0'), 1, 'right after the one that was running');
    // The queued heartbeat said so too: B was told it was next.
    assert.match(single.stream.text, /: queued 1\b/);
  });

  test('interactive goes before batch, and a batch request that waited past the aging limit goes first', async () => {
    // A short one running, then six long ones: they outlast the 1 s aging limit twice over, and N0 cannot age
    // before the first of them started, even on a loaded machine.
    const first = await start(server, 'I0', 'flood', 60);
    const batch = await start(server, 'N0', 'nightly', 10);
    const chats: Started[] = [];
    // 700 tokens each: on a quiet machine 250 took ~150 ms, and six of them ended before N0 could age.
    for (let i = 1; i < 7; i++) chats.push(await start(server, `I${i}`, i % 2 ? 'single' : 'flood', 700));
    const order = await startOrder([first, batch, ...chats]);
    const at = order.indexOf('N0');
    assert.ok(at >= 2, `interactive work that came after it went first: ${order.join(' ')}`);
    assert.ok(at < order.length - 1, `aged, it did not wait for all of them: ${order.join(' ')}`);
  });

  test('max_queued: past it, 429 with Retry-After in the Kobold envelope; the key never appears in it', async () => {
    const running = await start(server, 'R0', 'flood', 400);
    const queued = await start(server, 'F0', 'few', 5);
    const refused = await postJson(`${server.url}/api/v1/generate`, body('F1', 5), bearer('few'));
    assert.equal(refused.status, 429);
    assert.equal(envelopeProblem('kobold', refused.body), undefined);
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    assert.match(refused.body.detail.msg, /max_queued/);
    assert.ok(!JSON.stringify(refused.body).includes(testKey('few')));
    await running.stream.cancel();
    await withDeadline(queued.stream.done, 60_000, 'the queued one to run and end');
  });
});

describe('max_concurrent (two slots)', () => {
  let server: RunningServer;
  before(async () => {
    const keys = keyFile([
      { name: 'capped', key: testKey('capped'), max_concurrent: 1 },
      { name: 'other', key: testKey('other') },
    ]);
    server = await startTestServer({
      modelPath: slowTestModelPath(),
      contextSize: 1024,
      parallel: 2,
      apiKeysPath: keys.path,
    });
  });
  after(async () => server.close());

  test('a key at its max_concurrent waits while another key takes the free slot', async () => {
    const a0 = await start(server, 'C0', 'capped', 150);
    const a1 = await start(server, 'C1', 'capped', 10);
    await a0.startedAt;
    assert.equal(server.context.scheduler.busySlots, 1, 'the second slot stays free: C1 waits for C0');
    await a1.stream.until((text) => /^: queued 1\b/.test(text));
    const b0 = await start(server, 'O0', 'other', 10);
    const order = await startOrder([a0, a1, b0]);
    assert.deepEqual(order, ['C0', 'O0', 'C1']);
  });
});
