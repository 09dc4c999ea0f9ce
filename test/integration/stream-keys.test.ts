import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import type { RunningServer } from '../../src/main.ts';
import { postJson, startTestServer } from '../support/test-server.ts';

/**
 * Client-chosen keys (Kobold `genkey`, the WebSocket `id`, `X-Kindling-Stream`, `Idempotency-Key`) end up in a
 * response header and in the scheduler. One that is not a short run of safe characters must be a 400 at once;
 * it used to make the stream's head throw after the reply was hijacked, which left the response open forever.
 */
describe('client-chosen stream keys', () => {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => server.close());

  /** Raw JSON texts of bad genkeys: `\\ud800` stays an escape, so JSON.parse yields a lone surrogate. */
  const badGenkeys: Array<[string, string]> = [
    ['a line feed', '"a\\nb"'],
    ['only CR LF', '"\\r\\n"'],
    ['a NUL', '"\\u0000"'],
    ['non-ASCII', '"日本"'],
    ['a lone surrogate', '"\\ud800"'],
    ['20,000 characters', JSON.stringify('k'.repeat(20_000))],
    ['a space inside', '"KCPP 1234"'],
    ['a slash', '"KCPP/1234"'],
  ];
  const routes = [
    '/api/extra/generate/stream',
    '/api/v1/generate',
    '/api/extra/generate/check',
    '/api/extra/abort',
    '/api/extra/last_logprobs',
  ];

  for (const route of routes) {
    test(`${route}: every bad genkey is a 400 naming genkey and the rule, within 5 s`, async () => {
      for (const [what, key] of badGenkeys) {
        const response = await fetch(`${server.url}${route}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: `{"prompt":"Once","max_length":4,"genkey":${key}}`,
          signal: AbortSignal.timeout(5000),
        });
        const body = (await response.json()) as { detail: { msg: string; field: string } };
        assert.equal(response.status, 400, `${what}: ${JSON.stringify(body)}`);
        assert.equal(body.detail.field, 'genkey', what);
        assert.match(body.detail.msg, /1 to 128 characters from A-Z a-z 0-9 \. _ : ~ \+ = @ -/, what);
      }
    });
  }

  test('keys clients really send pass: Lite, UUIDs, SDK idempotency keys, surrounding whitespace trimmed', async () => {
    const keys = [
      'KCPP4821',
      crypto.randomUUID(),
      `stainless-node-retry-${crypto.randomUUID()}`,
      'ks-0a1b2c3d4e5f6g7h8i',
    ];
    for (const key of keys) {
      const response = await fetch(`${server.url}/api/extra/generate/stream`, {
        method: 'POST',
        body: JSON.stringify({ prompt: 'Once', max_length: 2, genkey: `  ${key} ` }),
        signal: AbortSignal.timeout(10_000),
      });
      assert.equal(response.status, 200, key);
      // The header carries the server-issued id, never client text; the trimmed key still finds the generation.
      assert.match(response.headers.get('x-kindling-generation') ?? '', /^kg-[A-Za-z0-9_-]{20,}$/);
      await response.text();
      const check = await postJson(`${server.url}/api/extra/generate/check`, { genkey: key });
      assert.equal(check.body.results[0].status, 'done', key);
    }
    const none = await postJson(`${server.url}/api/v1/generate`, { prompt: 'Once', max_length: 2, genkey: '' });
    assert.equal(none.status, 200, 'an empty genkey is no key, as in KoboldCpp');
  });

  /** One raw HTTP/1.1 request (fetch and node:http refuse to send these header values at all). */
  const rawRequest = (path: string, headers: string, body: string) =>
    new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(new URL(server.url).port), '127.0.0.1');
      let data = '';
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no answer within 5 s; got ${data.slice(0, 200)}`));
      }, 5000);
      socket.on('data', (chunk) => {
        data += chunk.toString('latin1');
      });
      socket.on('close', () => {
        clearTimeout(timer);
        resolve(data);
      });
      socket.on('error', () => {});
      socket.write(
        Buffer.concat([
          Buffer.from(
            `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`,
          ),
          Buffer.from(headers, 'utf8'),
          Buffer.from(`\r\n${body}`),
        ]),
      );
    });

  test('X-Kindling-Stream and Idempotency-Key: bad values are a 400 on the OpenAI and Anthropic stream routes', async () => {
    const bad = ['a b', '日本', 'k'.repeat(2000), 'key;drop', 'a"b', '\t '];
    const chat = JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2, stream: true });
    const message = JSON.stringify({
      model: 'x',
      max_tokens: 2,
      stream: true,
      messages: [{ role: 'user', content: 'Hi' }],
    });
    for (const value of bad) {
      for (const header of ['X-Kindling-Stream', 'Idempotency-Key']) {
        const openai = await rawRequest('/v1/chat/completions', `${header}: x${value}y\r\n`, chat);
        assert.match(openai, /^HTTP\/1\.1 400 /, `${header}: ${JSON.stringify(value)}`);
        const error = JSON.parse(openai.slice(openai.indexOf('\r\n\r\n') + 4)).error;
        assert.equal(error.param, header);
        assert.match(error.message, /A-Z a-z 0-9/);
        const anthropic = await rawRequest('/v1/messages', `${header}: x${value}y\r\n`, message);
        assert.match(anthropic, /^HTTP\/1\.1 400 /, `${header} on /v1/messages: ${JSON.stringify(value)}`);
        assert.equal(JSON.parse(anthropic.slice(anthropic.indexOf('\r\n\r\n') + 4)).type, 'error');
      }
    }
    // A control character is refused by the HTTP parser itself, before any route: still a 400, still no hang.
    const control = await rawRequest('/v1/chat/completions', 'X-Kindling-Stream: a\x01b\r\n', chat);
    assert.match(control, /^HTTP\/1\.1 400 /);
    const good = await rawRequest('/v1/chat/completions', `X-Kindling-Stream: ${crypto.randomUUID()}\r\n`, chat);
    assert.match(good, /^HTTP\/1\.1 200 /);
    assert.match(good, /data: \[DONE\]/);
  });

  test('WebSocket: a start or abort with a bad id is an error message, and the connection goes on', async () => {
    const socket = new WebSocket(`${server.url.replace('http', 'ws')}/api/extra/generate/ws`);
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    const messages: Array<{ type: string; status?: number; message?: string; id?: string }> = [];
    socket.on('message', (data) => messages.push(JSON.parse(String(data))));
    const until = async (count: number) => {
      const deadline = Date.now() + 5000;
      while (messages.length < count) {
        if (Date.now() > deadline) throw new Error(`timeout; got ${JSON.stringify(messages)}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    socket.send(JSON.stringify({ type: 'start', id: 'a\nb', request: { prompt: 'Once', max_length: 2 } }));
    socket.send(JSON.stringify({ type: 'abort', id: '日本' }));
    socket.send(JSON.stringify({ type: 'ping' }));
    await until(3);
    assert.equal(messages[0]?.type, 'error');
    assert.equal(messages[0]?.status, 400);
    assert.match(messages[0]?.message ?? '', /^id: must be 1 to 128 characters/);
    assert.equal(messages[1]?.type, 'error');
    assert.equal(messages[1]?.status, 400);
    assert.equal(messages[2]?.type, 'pong');
    socket.close();
  });

  test('after all of that the server still generates, and closing it takes seconds, not forever', async () => {
    const normal = await postJson(`${server.url}/api/v1/generate`, { prompt: 'Once', max_length: 3 });
    assert.equal(normal.status, 200);
    assert.equal(typeof normal.body.results[0].text, 'string');
    assert.equal(server.context.scheduler.busySlots, 0, 'no generation runs on unseen');
    const started = Date.now();
    await server.close();
    assert.ok(Date.now() - started < 3000, `close took ${Date.now() - started} ms`);
  });
});
