import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import type { RunningServer } from '../../src/main.ts';
import { withDeadline } from '../support/deadline.ts';
import { koboldEvents, requestFrom } from '../support/from-address.ts';
import { bearer, keyFile, testKey } from '../support/key-file.ts';
import { envelopeProblem, type Protocol } from '../support/protocol-envelope.ts';
import { openStream } from '../support/sse-capture.ts';
import { banEndTokens, getJson, postJson, startTestServer } from '../support/test-server.ts';

/** One small generation request in each protocol, and how that protocol's clients send the key. */
const REQUESTS: Array<{
  protocol: Protocol;
  path: string;
  body: unknown;
  auth: (name: string) => Record<string, string>;
}> = [
  { protocol: 'kobold', path: '/api/v1/generate', body: { prompt: 'Hi', max_length: 2 }, auth: bearer },
  { protocol: 'openai', path: '/v1/completions', body: { model: 'x', prompt: 'Hi', max_tokens: 2 }, auth: bearer },
  {
    protocol: 'openai',
    path: '/v1/chat/completions',
    body: { model: 'x', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2, stream: true },
    auth: bearer,
  },
  {
    protocol: 'anthropic',
    path: '/v1/messages',
    body: { model: 'x', max_tokens: 2, messages: [{ role: 'user', content: 'Hi' }], stream: true },
    auth: (name) => ({ 'x-api-key': testKey(name), 'anthropic-version': '2023-06-01' }),
  },
  {
    protocol: 'ollama',
    path: '/api/generate',
    body: { model: 'x', prompt: 'Hi', stream: false, options: { num_predict: 2 } },
    auth: (name) => ({ apikey: testKey(name) }),
  },
];

describe('quotas of API keys', () => {
  let server: RunningServer;
  before(async () => {
    const keys = keyFile([
      { name: 'once', key: testKey('once'), requests_per_minute: 1 },
      { name: 'tokens', key: testKey('tokens'), tokens_per_minute: 40 },
      { name: 'free', key: testKey('free') },
      { name: 'socket', key: testKey('socket'), requests_per_minute: 1 },
    ]);
    server = await startTestServer({ apiKeysPath: keys.path, contextSize: 512 });
  });
  after(async () => server.close());

  test('past requests_per_minute: 429 in the envelope of each protocol, with Retry-After and rate headers', async () => {
    const first = await postJson(`${server.url}/api/v1/generate`, { prompt: 'Hi', max_length: 2 }, bearer('once'));
    const firstAt = Date.now();
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('x-ratelimit-limit-requests'), '1');
    assert.equal(first.headers.get('x-ratelimit-remaining-requests'), '0');
    assert.match(first.headers.get('x-ratelimit-reset-requests') ?? '', /^(\d+(\.\d+)?s|1m0s)$/);
    for (const { protocol, path, body, auth } of REQUESTS) {
      const refused = await postJson(`${server.url}${path}`, body, auth('once'));
      assert.equal(refused.status, 429, `${path}: ${JSON.stringify(refused.body)}`);
      assert.equal(envelopeProblem(protocol, refused.body), undefined, path);
      const retryAfter = Number(refused.headers.get('retry-after'));
      const left = Math.ceil((firstAt + 60_000 - Date.now()) / 1000);
      assert.ok(retryAfter >= left - 1 && retryAfter <= left + 1, `${path}: Retry-After ${retryAfter}, ${left} s left`);
      assert.equal(refused.headers.get('x-ratelimit-remaining-requests'), '0', path);
      assert.ok(!JSON.stringify(refused.body).includes(testKey('once')), 'the key is never in an error');
    }
  });

  test('tokens_per_minute caps a stream at submission: it ends with finish_reason "length", then 429', async () => {
    const stream = await openStream(
      `${server.url}/api/extra/generate/stream`,
      { prompt: 'Once upon a time', max_length: 300, logit_bias: banEndTokens(server) },
      bearer('tokens'),
    );
    await withDeadline(stream.done, 60_000, 'the capped stream to end');
    const events = koboldEvents(stream.text);
    assert.equal(events.at(-1)?.data.finish_reason, 'length');
    const generation = server.context.scheduler.last;
    assert.ok(generation);
    assert.equal(generation.promptTokens.length + generation.maxTokens, 40, 'prompt + generated = the minute budget');
    assert.equal(stream.response.headers.get('x-ratelimit-limit-tokens'), '40', 'the stream head carries them too');
    const info = await getJson(`${server.url}/api/v1/model`, bearer('tokens'));
    assert.equal(info.status, 200);
    assert.equal(info.headers.get('x-ratelimit-remaining-tokens'), '0', 'every response of the key says so');
    const refused = await postJson(
      `${server.url}/v1/completions`,
      { model: 'x', prompt: 'Hi', max_tokens: 2 },
      bearer('tokens'),
    );
    assert.equal(refused.status, 429);
    assert.ok(Number(refused.headers.get('retry-after')) >= 55);
  });

  test('on the WebSocket, a start past the quota is an error message with status 429 and retry_after', async () => {
    const socket = new WebSocket(
      `${server.url.replace('http', 'ws')}/api/extra/generate/ws?apikey=${testKey('socket')}`,
    );
    await withDeadline(
      new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject)),
      10_000,
      'the WebSocket to open',
    );
    const messages: any[] = [];
    socket.on('message', (data) => messages.push(JSON.parse(String(data))));
    const start = (id: string) =>
      socket.send(JSON.stringify({ type: 'start', id, request: { prompt: 'Hi', max_length: 1 } }));
    start('WS1');
    await withDeadline(
      (async () => {
        while (!messages.some((m) => m.type === 'end')) await new Promise((resolve) => setTimeout(resolve, 20));
      })(),
      30_000,
      'the first generation to end',
    );
    start('WS2');
    await withDeadline(
      (async () => {
        while (!messages.some((m) => m.type === 'error')) await new Promise((resolve) => setTimeout(resolve, 20));
      })(),
      30_000,
      'the refusal',
    );
    const error = messages.find((m) => m.type === 'error');
    assert.equal(error.id, 'WS2');
    assert.equal(error.status, 429);
    assert.ok(error.retry_after >= 58 && error.retry_after <= 60, `retry_after ${error.retry_after}`);
    socket.close();
  });

  test("a key is its principal from any address: its genkeys are found from there, and no other key's are", async () => {
    const body = { prompt: 'Hi', max_length: 2, genkey: 'KEYED1' };
    const made = await requestFrom('127.0.0.1', `${server.url}/api/v1/generate`, { body, headers: bearer('free') });
    assert.equal(made.status, 200);
    const check = (from: string, name: string) =>
      requestFrom(from, `${server.url}/api/extra/generate/check`, {
        body: { genkey: 'KEYED1' },
        headers: bearer(name),
      });
    const elsewhere = await check('127.0.0.2', 'free');
    assert.equal(elsewhere.json.results[0].status, 'done', 'the same key on another address');
    assert.equal(elsewhere.json.results[0].text, made.json.results[0].text);
    const otherKey = await check('127.0.0.1', 'tokens');
    assert.equal(otherKey.json.results[0].status, 'unknown', 'another key on the same address');
  });

  test('a key without quotas gets no rate headers; a missing or unknown key is a 401 in the envelope', async () => {
    const ok = await postJson(
      `${server.url}/v1/completions`,
      { model: 'x', prompt: 'Hi', max_tokens: 1 },
      bearer('free'),
    );
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('x-ratelimit-limit-requests'), null);
    for (const { protocol, path, body } of REQUESTS) {
      for (const headers of [{}, { authorization: 'Bearer sk-not-a-key-of-this-server' }] as Record<string, string>[]) {
        const refused = await postJson(`${server.url}${path}`, body, headers);
        assert.equal(refused.status, 401, path);
        assert.equal(envelopeProblem(protocol, refused.body), undefined, path);
      }
    }
    const open = await getJson(`${server.url}/api/extra/version`);
    assert.equal(open.status, 200, 'open routes stay open');
  });
});

describe('--ratelimit: per address, for callers without an API key', () => {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer({ ratelimitPerMinute: 2 });
  });
  after(async () => server.close());

  test('the third generation in a minute from one address is a 429 with Retry-After', async () => {
    for (let i = 0; i < 2; i++) {
      const ok = await postJson(`${server.url}/api/v1/generate`, { prompt: 'Hi', max_length: 1 });
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.get('x-ratelimit-remaining-requests'), String(1 - i));
    }
    const refused = await postJson(`${server.url}/api/generate`, { model: 'x', prompt: 'Hi', stream: false });
    assert.equal(refused.status, 429);
    assert.equal(envelopeProblem('ollama', refused.body), undefined);
    assert.ok(Number(refused.headers.get('retry-after')) >= 58);
  });
});
