import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../../src/main.ts';
import { withDeadline } from '../support/deadline.ts';
import { parseLikeLite } from '../support/lite-sse-parser.ts';
import { rawRequest } from '../support/raw-http.ts';
import { startTestServer } from '../support/test-server.ts';

describe('connections: keep-alive timeout and proxy padding (real server, real model)', () => {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer({ keepAliveMs: 1000 });
  });
  after(async () => server.close());

  test('an idle keep-alive connection is closed after --keepalive-seconds, a busy one is reused', async () => {
    const { port } = new URL(server.url);
    const socket = connect(Number(port), '127.0.0.1');
    let received = '';
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
    });
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now())));
    const ask = () => socket.write(`GET /api/v1/model HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n`);
    await new Promise((resolve) => socket.once('connect', resolve));
    ask();
    await new Promise((resolve) => setTimeout(resolve, 500));
    ask(); // within the timeout: the same connection answers again
    const lastAnswer = performance.now();
    const at = await withDeadline(closed, 10_000, 'the idle connection to be closed');
    assert.equal(received.match(/HTTP\/1\.1 200/g)?.length, 2, 'both requests answered on one connection');
    const idle = at - lastAnswer;
    assert.ok(idle >= 800 && idle < 5000, `closed after ${Math.round(idle)} ms idle (timeout 1000 ms)`);
  });

  test('?pad=1 starts an SSE stream with a 16 KiB comment that Lite-style parsers skip; no pad by default', async () => {
    const body = { prompt: 'Once upon a time', max_length: 4, sampler_seed: 2 };
    const padded = await rawRequest(server.url, { method: 'POST', path: '/api/extra/generate/stream?pad=1', body });
    assert.equal(padded.status, 200);
    assert.match(padded.text, /^: {16000,}\n\n/);
    const plain = await rawRequest(server.url, { method: 'POST', path: '/api/extra/generate/stream', body });
    assert.ok(!plain.text.startsWith(': '), 'no padding unless asked');
    assert.deepEqual(
      parseLikeLite(padded.text).events.map((e) => e.data),
      parseLikeLite(plain.text).events.map((e) => e.data),
    );
    const header = await rawRequest(server.url, {
      method: 'POST',
      path: '/api/extra/generate/stream',
      body,
      headers: { 'x-kindling-pad': '4' },
    });
    assert.equal(header.text.indexOf('\n\n'), 4096 - 2, 'X-Kindling-Pad: 4 pads 4 KiB');
  });
});
