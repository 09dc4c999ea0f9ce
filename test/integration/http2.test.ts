import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { type ClientHttp2Session, connect } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../../src/main.ts';
import { withDeadline } from '../support/deadline.ts';
import { koboldEvents } from '../support/from-address.ts';
import { parseLikeLite } from '../support/lite-sse-parser.ts';
import { slowTestModelPath } from '../support/test-model.ts';
import { banEndTokens, startTestServer } from '../support/test-server.ts';

const TLS = join(import.meta.dirname, '..', 'fixtures', 'tls');
const ca = readFileSync(join(TLS, 'localhost-cert.pem'));

interface H2Answer {
  status: number;
  headers: Record<string, unknown>;
  text: string;
}

/** One request as a stream of an HTTP/2 session; `onText` sees the body as it grows. */
function h2Post(
  session: ClientHttp2Session,
  path: string,
  body: unknown,
  onText?: (text: string, close: () => void) => void,
  requestHeaders: Record<string, string> = {},
): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/json',
      ...requestHeaders,
    });
    let headers: Record<string, unknown> = {};
    let text = '';
    stream.setEncoding('utf8');
    stream.on('response', (h) => {
      headers = h;
    });
    stream.on('data', (chunk: string) => {
      text += chunk;
      onText?.(text, () => stream.close());
    });
    stream.on('close', () => resolve({ status: Number(headers[':status']), headers, text }));
    stream.on('error', reject);
    stream.end(JSON.stringify(body));
  });
}

describe('HTTPS with HTTP/2 (real server, real model)', () => {
  let server: RunningServer;
  let session: ClientHttp2Session;
  let bans: Record<string, number>;
  before(async () => {
    server = await startTestServer({
      modelPath: slowTestModelPath(),
      parallel: 2,
      heartbeatMs: 200,
      tls: { certPath: join(TLS, 'localhost-cert.pem'), keyPath: join(TLS, 'localhost-key.pem') },
    });
    assert.match(server.url, /^https:/);
    bans = banEndTokens(server);
    session = connect(server.url, { ca });
  });
  after(async () => {
    session?.close();
    await server.close();
  });

  test('eight SSE streams share one connection, past HTTP/1.1’s six per origin, and all end with their final event', async () => {
    const answers = await withDeadline(
      Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          h2Post(session, '/api/extra/generate/stream', {
            prompt: `Story ${i}`,
            max_length: 6,
            sampler_seed: i,
            logit_bias: bans,
          }),
        ),
      ),
      120_000,
      'eight streams on one session',
    );
    for (const answer of answers) {
      assert.equal(answer.status, 200);
      assert.match(String(answer.headers['content-type']), /^text\/event-stream/);
      assert.equal(answer.headers['transfer-encoding'], undefined, 'no HTTP/1.1 framing headers in HTTP/2');
      assert.equal(parseLikeLite(answer.text).events.at(-1)?.data.finish_reason, 'length');
    }
    // The six queued behind the two slots heard where they stood, as heartbeats on the same connection.
    assert.ok(answers.some((a) => /: (ping )?queued \d+/.test(a.text)));
  });

  test('closing a stream (RST_STREAM) aborts its anonymous generation, as a closed HTTP/1.1 connection does', async () => {
    const { scheduler } = server.context;
    let closedAfterText = false;
    await withDeadline(
      h2Post(
        session,
        '/api/extra/generate/stream',
        { prompt: 'Once', max_length: 400, logit_bias: bans },
        (text, close) => {
          if (!closedAfterText && text.includes('event: message')) {
            closedAfterText = true;
            close();
          }
        },
      ),
      60_000,
      'the stream to close',
    );
    assert.ok(closedAfterText);
    const deadline = Date.now() + 10_000;
    while (scheduler.busySlots > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(scheduler.busySlots, 0, 'the slot was freed');
  });

  test('a keyed stream cut over HTTP/2 resumes with Last-Event-ID: no event lost, none twice', async () => {
    const body = { prompt: 'Once upon a time', max_length: 300, sampler_seed: 9, logit_bias: bans, genkey: 'KCPPh2' };
    let cutAt = '';
    const first = await withDeadline(
      h2Post(session, '/api/extra/generate/stream', body, (text, close) => {
        const events = koboldEvents(text.slice(0, text.lastIndexOf('\n\n') + 2));
        if (!cutAt && events.length >= 3) {
          // The third event, whatever arrived with it: the resume must continue right after it.
          cutAt = String(events[2]?.id);
          close();
        }
      }),
      60_000,
      'the first connection',
    );
    assert.ok(cutAt, 'cut after three events');
    const complete = (text: string) => koboldEvents(text.slice(0, text.lastIndexOf('\n\n') + 2));
    const seen = complete(first.text).filter((e) => Number(e.id) <= Number(cutAt));
    const rest = await withDeadline(
      h2Post(session, '/api/extra/generate/stream', body, undefined, { 'last-event-id': cutAt }),
      60_000,
      'the resumed stream',
    );
    const resumed = complete(rest.text);
    assert.ok(Number(resumed[0]?.id) > Number(cutAt), `resumed at ${resumed[0]?.id} after ${cutAt}`);
    const text = [...seen, ...resumed].map((e) => e.data.token ?? '').join('');
    const check = await h2Post(session, '/api/extra/generate/check', { genkey: 'KCPPh2' });
    assert.equal(text, JSON.parse(check.text).results[0].text);
    assert.equal(resumed.at(-1)?.data.finish_reason, 'length');
  });

  test('a gzip-accepting HTTP/2 client gets a compressed stream; HTTP/1.1 over TLS still works (ALPN)', async () => {
    const compressed = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const stream = session.request({
        ':method': 'POST',
        ':path': '/api/extra/generate/stream',
        'content-type': 'application/json',
        'accept-encoding': 'gzip',
      });
      stream.on('response', resolve);
      stream.on('error', reject);
      stream.resume();
      stream.end(JSON.stringify({ prompt: 'x', max_length: 2 }));
    });
    assert.equal(compressed['content-encoding'], 'gzip');
    // An HTTPS client that offers no ALPN (as node:https does) is answered over HTTP/1.1.
    const h1 = await new Promise<{ status: number; version: string; body: string }>((resolve, reject) => {
      const req = httpsRequest(`${server.url}/api/v1/model`, { ca }, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          body += chunk;
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, version: response.httpVersion, body }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(h1.status, 200);
    assert.equal(h1.version, '1.1');
    assert.match(JSON.parse(h1.body).result, /^koboldcpp\//);
  });
});
