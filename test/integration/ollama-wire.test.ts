import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { RunningServer } from '../../src/main.ts';
import { deadlineSignal } from '../support/deadline.ts';
import { banEndTokens, postJson, startTestServer } from '../support/test-server.ts';

/** Ollama NDJSON on the wire: real streaming, line framing, field order, final counters, errors. */
let server: RunningServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.close());

const post = (path: string, body: unknown) =>
  fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: deadlineSignal(60_000, `the answer to POST ${path}`),
  });

function lines(text: string): any[] {
  assert.ok(text.endsWith('\n'), 'every line, the last one too, ends with a newline');
  assert.ok(!text.includes('data:') && !text.includes('\n\n'), 'NDJSON, not SSE');
  return text
    .slice(0, -1)
    .split('\n')
    .map((line) => JSON.parse(line));
}

test('generate streams by default: NDJSON lines, field order, final line with done_reason, context and counters', async () => {
  const response = await post('/api/generate', { model: 'x', prompt: 'Hi', options: { num_predict: 6 } });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-type'), 'application/x-ndjson; charset=utf-8');
  const list = lines(await response.text());
  for (const line of list.slice(0, -1))
    assert.deepEqual(Object.keys(line), ['model', 'created_at', 'response', 'done']);
  const final = list.at(-1);
  assert.deepEqual(Object.keys(final), [
    'model',
    'created_at',
    'response',
    'done',
    'done_reason',
    'context',
    'total_duration',
    'load_duration',
    'prompt_eval_count',
    'prompt_eval_duration',
    'eval_count',
    'eval_duration',
  ]);
  assert.equal(final.done, true);
  assert.ok(['stop', 'length'].includes(final.done_reason));
  assert.ok(final.context.every((id: unknown) => Number.isInteger(id)));
  assert.ok(list.slice(0, -1).every((line) => line.done === false));
});

test('lines are written as tokens arrive, not after the generation ended', async () => {
  const response = await post('/api/generate', {
    prompt: 'Once',
    options: { num_predict: 300, logit_bias: banEndTokens(server) },
  });
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const first = new TextDecoder().decode((await reader.read()).value);
  const generation = server.context.scheduler.last;
  assert.ok(first.includes('"done":false'));
  assert.equal(generation?.log.ended, false, 'the first line arrived while the model was still generating');
  await reader.cancel();
});

test('stream: false gives one JSON object; chat has message objects; empty input answers done_reason "load"', async () => {
  const whole = await postJson(`${server.url}/api/generate`, {
    prompt: 'Hi',
    stream: false,
    options: { num_predict: 3 },
  });
  assert.equal(whole.body.done, true);
  assert.equal(typeof whole.body.response, 'string');
  assert.ok(Array.isArray(whole.body.context));
  const chat = await postJson(`${server.url}/api/chat`, {
    messages: [{ role: 'user', content: 'Hi' }],
    stream: false,
    options: { num_predict: 3 },
  });
  assert.deepEqual(Object.keys(chat.body.message), ['role', 'content']);
  assert.equal(chat.body.message.role, 'assistant');
  assert.equal(chat.body.context, undefined, 'chat responses carry no context');
  const load = await post('/api/generate', { model: 'x' });
  const loaded = lines(await load.text());
  assert.equal(loaded.length, 1);
  assert.equal(loaded[0].done_reason, 'load');
  const loadChat = await postJson(`${server.url}/api/chat`, { messages: [], stream: false });
  assert.equal(loadChat.body.done_reason, 'load');
});

test('context from one response continues in the next request', async () => {
  const first = await postJson(`${server.url}/api/generate`, {
    prompt: 'Hi',
    stream: false,
    options: { num_predict: 4 },
  });
  const second = await postJson(`${server.url}/api/generate`, {
    prompt: 'More',
    context: first.body.context,
    stream: false,
    options: { num_predict: 2 },
  });
  assert.equal(second.status, 200);
  assert.ok(second.body.prompt_eval_count > first.body.context.length);
  const bad = await postJson(`${server.url}/api/generate`, { prompt: 'x', context: [10_000_000], stream: false });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error, /^context:/);
});

test('errors are {"error": "..."} naming the field', async () => {
  const badType = await postJson(`${server.url}/api/generate`, { prompt: 'x', options: { temperature: 'hot' } });
  assert.equal(badType.status, 400);
  assert.deepEqual(Object.keys(badType.body), ['error']);
  assert.match(badType.body.error, /options\.temperature/);
  const tools = await postJson(`${server.url}/api/chat`, {
    messages: [{ role: 'user', content: 'x' }],
    tools: [{ type: 'function' }],
  });
  assert.equal(tools.status, 400);
  assert.match(tools.body.error, /^tools:/);
  for (const [path, body] of [
    ['/api/embed', { input: 'x' }],
    ['/api/embeddings', { prompt: 'x' }],
  ] as const) {
    const embed = await postJson(`${server.url}${path}`, body);
    assert.equal(embed.status, 400, `${path}: the test model does not embed`);
    assert.match(embed.body.error, /does not provide embeddings/);
  }
  const version = await fetch(`${server.url}/api/version`);
  assert.deepEqual(await version.json(), { version: '0.7.0' });
});

test('a generation that fails after streaming started ends with an {"error"} line', async () => {
  // A valid grammar no token can continue (a token id past the vocabulary) fails once the generation runs.
  const response = await post('/api/generate', { prompt: 'Hi', options: { grammar: 'root ::= <[4294967295]>' } });
  const list = lines(await response.text());
  assert.deepEqual(Object.keys(list.at(-1)), ['error']);
  assert.match(list.at(-1).error, /^grammar:/);
});
