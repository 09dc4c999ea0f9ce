import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { defaultServerConfig } from '../../src/config/server-config.ts';
import { FakeEngine } from '../../src/engine/fake/fake-engine.ts';
import type { RunningServer } from '../../src/main.ts';
import { Scheduler } from '../../src/scheduler/scheduler.ts';
import { createApp } from '../../src/server/app.ts';
import { openStream } from '../support/sse-capture.ts';
import { getJson, postJson, startTestServer } from '../support/test-server.ts';

const PASSWORD = 'log-secret-Zq81';
const PROMPT = 'Quixotic heliotrope marmalade';
const AUTH = { authorization: `Bearer ${PASSWORD}` };

/** A server at `--log-level info` whose log lines are captured, one whole line a write. */
async function loggedServer(overrides: Parameters<typeof startTestServer>[0] = {}, protect = true) {
  const lines: string[] = [];
  const server = await startTestServer({
    ...(protect ? { password: PASSWORD } : {}),
    logLevel: 'info',
    logStream: { write: (line: string) => lines.push(line) },
    ...overrides,
  });
  const entries = () => lines.map((line) => JSON.parse(line) as Record<string, any>);
  /** The request line of the request with this id, once written (a stream's is written when it ends). */
  const lineOf = async (reqId: string) => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const found = entries().find((entry) => entry.msg === 'request' && entry.reqId === reqId);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no request line for ${reqId}:\n${lines.join('')}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  return { server, lines, entries, lineOf };
}

describe('request log lines', () => {
  let logged: Awaited<ReturnType<typeof loggedServer>>;
  let server: RunningServer;
  before(async () => {
    logged = await loggedServer();
    server = logged.server;
  });
  after(async () => server.close());

  test('a generation: one JSON line with its figures, the key never, the prompt never', async () => {
    const answer = await postJson(
      `${server.url}/api/v1/generate`,
      { prompt: PROMPT, max_length: 6, ban_eos_token: true },
      { ...AUTH, 'x-request-id': 'client-id-1' },
    );
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.get('x-request-id'), 'client-id-1');
    const line = await logged.lineOf('client-id-1');
    assert.equal(line.level, 30);
    assert.equal(line.method, 'POST');
    assert.equal(line.route, '/api/v1/generate');
    assert.equal(line.protocol, 'kobold');
    assert.equal(line.status, 200);
    assert.equal(line.key, 'anonymous');
    assert.equal(line.ip, '127.0.0.1');
    assert.equal(line.prompt_tokens, answer.body.results[0].prompt_tokens);
    assert.equal(line.generated_tokens, 6);
    assert.equal(line.stop_reason, 'max-tokens');
    assert.equal(typeof line.queue_wait_ms, 'number');
    assert.ok(
      line.ttft_ms > 0 && line.ttft_ms <= line.duration_ms,
      `ttft ${line.ttft_ms}, duration ${line.duration_ms}`,
    );
    assert.match(line.generation, /^kg-/);
    assert.equal(line.disconnected, false);
    assert.equal(line.failure, undefined);
    assert.equal(line.prompt, undefined);
  });

  test('a stream: its line is written when it ends, with what it generated', async () => {
    const stream = await openStream(
      `${server.url}/v1/chat/completions`,
      { model: 'x', messages: [{ role: 'user', content: PROMPT }], max_tokens: 5, stream: true },
      { 'x-api-key': PASSWORD },
    );
    const id = stream.response.headers.get('x-request-id') as string;
    assert.match(id, /^[0-9a-f-]{36}$/);
    await stream.done;
    const line = await logged.lineOf(id);
    assert.equal(line.protocol, 'openai');
    assert.equal(line.route, '/v1/chat/completions');
    assert.ok(line.generated_tokens >= 1 && line.generated_tokens <= 5, String(line.generated_tokens));
    assert.ok(['max-tokens', 'eos'].includes(line.stop_reason), line.stop_reason);
  });

  test('a client that leaves mid-stream: a network failure, the generation aborted', async () => {
    const stream = await openStream(
      `${server.url}/api/extra/generate/stream`,
      { prompt: PROMPT, max_length: 2000, ban_eos_token: true },
      AUTH,
    );
    await stream.until((text) => text.includes('data:'));
    const id = stream.response.headers.get('x-request-id') as string;
    await stream.cancel();
    const line = await logged.lineOf(id);
    assert.equal(line.disconnected, true);
    assert.equal(line.failure, 'network');
    assert.equal(line.stop_reason, 'abort');
  });

  test('a keyed client that leaves: its generation runs on for a resume (not aborted), and the line names its genkey', async () => {
    const stream = await openStream(
      `${server.url}/api/extra/generate/stream`,
      { prompt: PROMPT, max_length: 2000, ban_eos_token: true, genkey: 'KCPP-LOG1' },
      AUTH,
    );
    await stream.until((text) => text.includes('data:'));
    const id = stream.response.headers.get('x-request-id') as string;
    await stream.cancel();
    const line = await logged.lineOf(id);
    assert.equal(line.disconnected, true);
    assert.equal(line.genkey, 'KCPP-LOG1');
    // `running` while the generation goes on past the line's short wait; the tiny model may fill the context first.
    assert.ok(['running', 'context-full'].includes(line.stop_reason), line.stop_reason);
    assert.ok(line.generated_tokens > 0, String(line.generated_tokens));
    await postJson(`${server.url}/api/extra/abort`, { genkey: 'KCPP-LOG1' }, AUTH);
  });

  test('refusals are lines too: 401 without the key, a business failure on bad input, 404 with its path only', async () => {
    const refused = await postJson(`${server.url}/api/v1/generate`, { prompt: PROMPT }, { 'x-request-id': 'no-key' });
    assert.equal(refused.status, 401);
    const unauthorized = await logged.lineOf('no-key');
    assert.equal(unauthorized.status, 401);
    assert.equal(unauthorized.error_code, 'unauthorized');
    assert.equal(unauthorized.failure, 'business');
    const bad = await postJson(
      `${server.url}/api/v1/generate`,
      { prompt: 7 },
      { ...AUTH, 'x-request-id': 'bad-input' },
    );
    assert.equal(bad.status, 400);
    assert.equal((await logged.lineOf('bad-input')).failure, 'business');
    const missing = await getJson(`${server.url}/no/such/path?apikey=${PASSWORD}`, { 'x-request-id': 'missing' });
    assert.equal(missing.status, 404);
    const line = await logged.lineOf('missing');
    assert.equal(line.route, '(unmatched)');
    assert.equal(line.path, '/no/such/path');
  });

  test('a request id that is not a plain token is replaced', async () => {
    const answer = await getJson(`${server.url}/health`, { 'x-request-id': `${'x'.repeat(200)}` });
    assert.match(answer.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    const odd = await getJson(`${server.url}/health`, { 'x-request-id': 'a b"c' });
    assert.match(odd.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  });

  test('the WebSocket handshake with ?apikey= leaves no key in the log', async () => {
    const socket = new WebSocket(`${server.url.replace('http', 'ws')}/api/extra/generate/ws?apikey=${PASSWORD}`);
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    const ended = new Promise<void>((resolve) =>
      socket.on('message', (data) => {
        if (/"finish_reason"|"type":"(done|end|error)"/.test(String(data))) resolve();
      }),
    );
    socket.send(JSON.stringify({ type: 'start', id: 'WS-LOG', request: { prompt: PROMPT, max_length: 3 } }));
    await ended;
    socket.close();
  });

  test('no line anywhere holds the key or the prompt, and every line is JSON', async () => {
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.ok(logged.lines.length >= 8, String(logged.lines.length));
    for (const line of logged.lines) {
      assert.ok(line.endsWith('\n'));
      JSON.parse(line);
      assert.ok(!line.includes(PASSWORD), `the key in: ${line}`);
      assert.ok(!line.includes('Quixotic'), `the prompt in: ${line}`);
    }
  });
});

describe('--log-prompts', () => {
  test('puts the prompt in the request line, and only then', async () => {
    const logged = await loggedServer({ logPrompts: true }, false);
    try {
      await postJson(
        `${logged.server.url}/api/v1/generate`,
        { prompt: PROMPT, max_length: 2 },
        { 'x-request-id': 'p1' },
      );
      assert.equal((await logged.lineOf('p1')).prompt, PROMPT);
    } finally {
      await logged.server.close();
    }
  });
});

describe('an engine failure, at the default level (warn)', () => {
  test('its request line is an error line: request id, generation, route, the engine failure and its message', async () => {
    const lines: string[] = [];
    const engine = new FakeEngine({
      slots: 1,
      tokenDelayMs: 1,
      failAfter: { tokens: 2, message: 'the GPU went away' },
    });
    const scheduler = new Scheduler(engine, { maxQueue: 4, graceMs: 60_000, maxGenerationMs: 0, maxQueueWaitMs: 0 });
    const config = {
      ...defaultServerConfig(''),
      heartbeatMs: 0,
      logStream: { write: (line: string) => lines.push(line) },
    };
    const app = await createApp({ config, engine, scheduler, version: 'test', jsonSchemaToGrammar: async () => '' });
    try {
      await app.listen({ port: 0, host: '127.0.0.1' });
      const address = app.server.address();
      const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
      const failed = await postJson(
        `${url}/api/v1/generate`,
        { prompt: 'x', max_length: 10 },
        { 'x-request-id': 'gpu-1' },
      );
      assert.equal(failed.status, 500);
      await new Promise((resolve) => setTimeout(resolve, 100));
      const line = lines.map((l) => JSON.parse(l)).find((entry) => entry.msg === 'request' && entry.reqId === 'gpu-1');
      assert.ok(line, lines.join(''));
      assert.equal(line.level, 50);
      assert.equal(line.route, '/api/v1/generate');
      assert.match(line.generation, /^kg-/);
      assert.equal(line.failure, 'engine');
      assert.equal(line.error_code, 'model_error');
      assert.match(line.err.message, /the GPU went away/);
      // The engine's own error, as the cause, with its stack.
      assert.match(line.err.stack, /caused by: .*the GPU went away/);
      assert.equal(line.stop_reason, 'error');
    } finally {
      await app.close();
    }
  });
});
