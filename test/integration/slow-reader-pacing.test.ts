import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { type ClientHttp2Session, type ClientHttp2Stream, connect } from 'node:http2';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../../src/main.ts';
import { withDeadline } from '../support/deadline.ts';
import { koboldEvents } from '../support/from-address.ts';
import { slowTestModelPath } from '../support/test-model.ts';
import { banEndTokens, startTestServer } from '../support/test-server.ts';

const TLS = join(import.meta.dirname, '..', 'fixtures', 'tls');
const ca = readFileSync(join(TLS, 'localhost-cert.pem'));

/**
 * A reader throttled to `bytesPerSecond`. Over loopback TCP the kernel would take megabytes before the server saw
 * a slow reader at all; HTTP/2's flow control makes the throttle real at once: with a 1 KB window, and the body
 * read 256 bytes at a time, the server can send only as fast as this reader takes it.
 */
function readThrottled(session: ClientHttp2Session, body: unknown, bytesPerSecond: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const stream: ClientHttp2Stream = session.request({
      ':method': 'POST',
      ':path': '/api/extra/generate/stream',
      'content-type': 'application/json',
    });
    let text = '';
    // Node buffers 16 KB per stream before it stops granting the server window; http2 has no option to lower
    // that, so the readable state is set directly: past 256 bytes unread, the server may send no more.
    (stream as unknown as { _readableState: { highWaterMark: number } })._readableState.highWaterMark = 256;
    stream.pause();
    const step = 256;
    const timer = setInterval(
      () => {
        for (let chunk = stream.read(step); chunk !== null; chunk = null) text += chunk.toString('utf8');
      },
      (1000 * step) / bytesPerSecond,
    );
    stream.on('end', () => {
      clearInterval(timer);
      resolve(text);
    });
    stream.on('error', (error) => {
      clearInterval(timer);
      reject(error);
    });
    // A paused stream reports its end only once its buffer is read out.
    stream.on('readable', () => {
      if (stream.readableEnded) clearInterval(timer);
    });
    stream.end(JSON.stringify(body));
  });
}

function readFreely(session: ClientHttp2Session, body: unknown, path = '/api/extra/generate/stream'): Promise<string> {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/json',
    });
    let text = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      text += chunk;
    });
    stream.on('end', () => resolve(text));
    stream.on('error', reject);
    stream.end(JSON.stringify(body));
  });
}

describe('a reader throttled to 1 KB/s (real server, real model, HTTP/2 flow control)', () => {
  let server: RunningServer;
  let free: ClientHttp2Session;
  let slow: ClientHttp2Session;
  let bans: Record<string, number>;
  before(async () => {
    server = await startTestServer({
      modelPath: slowTestModelPath(),
      contextSize: 2048,
      tls: { certPath: join(TLS, 'localhost-cert.pem'), keyPath: join(TLS, 'localhost-key.pem') },
    });
    bans = banEndTokens(server);
    free = connect(server.url, { ca });
    slow = connect(server.url, { ca, settings: { initialWindowSize: 1024 } });
  });
  after(async () => {
    free?.close();
    slow?.close();
    await server?.close();
  });

  test('gets the same text in fewer, larger events, in a bounded number of bytes', async () => {
    const body = { prompt: 'Once upon a time', max_length: 500, sampler_seed: 13, logit_bias: bans };
    const plain = koboldEvents(await withDeadline(readFreely(free, body), 60_000, 'the free reader'));
    // A reader that keeps up over HTTP/2 is not paced: one event per token (an HTTP/2 write always waits for the
    // session's next send, and was once taken for a slow reader).
    const single = plain.slice(1).filter((e, i) => Number(e.id) - Number(plain[i]?.id) === 1).length;
    assert.ok(single >= 0.9 * (plain.length - 1), `${single} of ${plain.length - 1} free events carry one part`);
    const started = performance.now();
    const slowText = await withDeadline(
      readThrottled(slow, { ...body, genkey: 'KCPPslow' }, 1024),
      120_000,
      'the throttled reader',
    );
    const seconds = (performance.now() - started) / 1000;
    const paced = koboldEvents(slowText);
    const text = (events: typeof plain) => events.map((e) => e.data.token ?? '').join('');
    const check = JSON.parse(await readFreely(free, { genkey: 'KCPPslow' }, '/api/extra/generate/check'));
    assert.equal(text(paced), check.results[0].text, "the server's text, every token");
    // It really was read at about 1 KB/s.
    assert.ok(Buffer.byteLength(slowText) / seconds < 1500, `${Buffer.byteLength(slowText)} bytes in ${seconds} s`);
    assert.equal(paced.at(-1)?.data.finish_reason, 'length');
    // Ids count logged parts: an event that jumps many ids carries that many tokens.
    const jumps = paced.slice(1).map((e, i) => Number(e.id) - Number(paced[i]?.id));
    const biggest = Math.max(...jumps);
    assert.ok(paced.length < plain.length / 4, `${paced.length} events throttled against ${plain.length} free`);
    assert.ok(biggest >= 20, `the largest event carries ${biggest} parts`);
    // The framing the server queued shrank with the events: what a slow reader costs stays near the text itself.
    assert.ok(
      Buffer.byteLength(slowText) < Buffer.byteLength(koboldEventsText(plain)) / 2,
      `${Buffer.byteLength(slowText)} bytes throttled`,
    );
  });
});

function koboldEventsText(events: ReturnType<typeof koboldEvents>): string {
  return events.map((e) => `id: ${e.id}\nevent: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`).join('');
}
