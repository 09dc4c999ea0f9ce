import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { RunningServer } from '../../src/main.ts';
import { deadlineSignal, readUntil, withDeadline } from '../support/deadline.ts';
import { banEndTokens, LOCAL_PRINCIPAL, postJson, startTestServer } from '../support/test-server.ts';

/** OpenAI routes byte for byte: SSE framing, chunk field order, [DONE], ids, resume, error envelope. */
let server: RunningServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.close());

const chat = (extra: Record<string, unknown> = {}) => ({
  messages: [{ role: 'user', content: 'Hi' }],
  max_tokens: 8,
  stream: true,
  ...extra,
});
const post = (path: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal) =>
  fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    signal: deadlineSignal(60_000, `the answer to POST ${path}`, signal),
  });

/** Splits an SSE body into events, asserting the framing rules on the way. */
function events(body: string): Array<{ id: string; data: string }> {
  assert.ok(body.endsWith('data: [DONE]\n\n'), '[DONE] is last and followed by a blank line');
  assert.ok(!body.includes('\r'), 'LF line endings only');
  const out: Array<{ id: string; data: string }> = [];
  for (const block of body.split('\n\n').slice(0, -1)) {
    if (block.startsWith(': ')) continue; // heartbeat / queue comment
    const match = /^id: (\d+(?:\.\d)?)\ndata: (.+)$/.exec(block);
    assert.ok(match, `event framed as "id: n\\ndata: json": ${JSON.stringify(block)}`);
    out.push({ id: match[1] as string, data: match[2] as string });
  }
  return out;
}

test('chat stream: id + data frames, fixed field order, role once, one finish, usage chunk, [DONE]', async () => {
  const response = await post('/v1/chat/completions', chat({ stream_options: { include_usage: true } }));
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  assert.equal(response.headers.get('cache-control'), 'no-cache');
  const list = events(await response.text());
  assert.equal(list.at(-1)?.data, '[DONE]');
  const chunks = list.slice(0, -1).map((e) => JSON.parse(e.data));
  for (const chunk of chunks) {
    assert.deepEqual(Object.keys(chunk), [
      'id',
      'object',
      'created',
      'model',
      'system_fingerprint',
      'choices',
      'usage',
    ]);
    assert.equal(chunk.id, chunks[0].id);
    assert.equal(chunk.object, 'chat.completion.chunk');
    assert.ok(Number.isInteger(chunk.created));
  }
  const ids = list.map((e) => Number(e.id));
  assert.deepEqual(
    [...ids].sort((a, b) => a - b),
    ids,
    'event ids never go backwards',
  );
  assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '' });
  assert.ok(
    chunks.slice(1).every((c) => c.choices.length === 0 || !('role' in c.choices[0].delta)),
    'role only in the first delta',
  );
  const finishing = chunks.filter((c) => c.choices[0]?.finish_reason !== null && c.choices.length > 0);
  assert.equal(finishing.length, 1);
  assert.deepEqual(finishing[0].choices[0].delta, {});
  const usage = chunks.at(-1);
  assert.deepEqual(usage.choices, []);
  assert.ok(usage.usage.prompt_tokens > 0);
  assert.ok(
    chunks.slice(0, -1).every((c) => c.usage === null),
    'usage: null on every other chunk',
  );
});

test('without include_usage there is no usage key and no usage chunk', async () => {
  const list = events(await (await post('/v1/chat/completions', chat())).text());
  const chunks = list.slice(0, -1).map((e) => JSON.parse(e.data));
  assert.ok(chunks.every((c) => !('usage' in c) && c.choices.length === 1));
});

test('completions stream: text_completion chunks, final empty text with finish_reason, [DONE]', async () => {
  const list = events(await (await post('/v1/completions', { prompt: 'Once', max_tokens: 5, stream: true })).text());
  const chunks = list.slice(0, -1).map((e) => JSON.parse(e.data));
  assert.ok(chunks.every((c) => c.object === 'text_completion' && /^cmpl-/.test(c.id)));
  assert.deepEqual(Object.keys(chunks[0].choices[0]), ['text', 'index', 'logprobs', 'finish_reason']);
  const last = chunks.at(-1);
  assert.equal(last.choices[0].text, '');
  assert.ok(['stop', 'length'].includes(last.choices[0].finish_reason));
});

test('a keyed stream survives its client leaving and resumes after Last-Event-ID without a new generation', async () => {
  const { scheduler } = server.context;
  const key = `resume-${Date.now()}`;
  const body = chat({ max_tokens: 60, logit_bias: banEndTokens(server) });
  const controller = new AbortController();
  const first = await post('/v1/chat/completions', body, { 'X-Kindling-Stream': key }, controller.signal);
  const reader = (first.body as ReadableStream<Uint8Array>).getReader();
  const seen = await readUntil(
    reader,
    (text) => /id: [3-9]\d*\ndata: .*\n\n/.test(text),
    20_000,
    'an event with id 3 or more',
  );
  controller.abort();
  const blocks = seen.split('\n\n').filter((b) => b.startsWith('id: '));
  const lastId = /^id: ([\d.]+)/.exec(blocks.at(-1) as string)?.[1] as string;
  const generation = scheduler.find(LOCAL_PRINCIPAL, key);
  assert.ok(generation, 'the keyed generation is still known');
  await withDeadline(
    (async () => {
      while (!generation.log.ended) await generation.log.waitForPartAfter(generation.log.lastId);
    })(),
    30_000,
    'the keyed generation to end',
  );
  assert.notEqual(generation.stopReason, 'abort', 'a keyed generation keeps running when its client leaves');

  const resumed = await post('/v1/chat/completions', body, { 'Idempotency-Key': key, 'Last-Event-ID': lastId });
  const list = events(await resumed.text());
  assert.equal(scheduler.find(LOCAL_PRINCIPAL, key), generation, 'no new generation');
  assert.ok(list.every((e) => Number(e.id) > Number(lastId)));
  const before = blocks.map((b) => /data: (.*)$/.exec(b)?.[1] as string).map((d) => JSON.parse(d));
  const afterChunks = list.slice(0, -1).map((e) => JSON.parse(e.data));
  assert.equal(afterChunks[0].id, before[0].id, 'same completion id on the resumed connection');
  const text = [...before, ...afterChunks].map((c) => c.choices[0]?.delta?.content ?? '').join('');
  assert.equal(text, generation.log.text, 'first connection + resumed connection = the whole text, nothing twice');
});

test('an anonymous stream is aborted when its client leaves', async () => {
  const { scheduler } = server.context;
  const controller = new AbortController();
  const response = await post(
    '/v1/chat/completions',
    chat({ max_tokens: 400, logit_bias: banEndTokens(server) }),
    {},
    controller.signal,
  );
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  await reader.read();
  const generation = scheduler.last;
  controller.abort();
  const deadline = Date.now() + 3000;
  while (!generation?.log.ended && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(generation?.stopReason, 'abort');
});

test('errors use the OpenAI envelope and name the field; a live duplicate key is 409', async () => {
  const bad = await postJson(`${server.url}/v1/chat/completions`, {
    messages: [{ role: 'user', content: 'Hi' }],
    temperature: 'hot',
  });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.type, 'invalid_request_error');
  assert.equal(bad.body.error.param, 'temperature');
  const missing = await postJson(`${server.url}/v1/chat/completions`, { max_tokens: 3 });
  assert.equal(missing.status, 400);
  assert.equal(missing.body.error.param, 'messages');
  const image = await postJson(`${server.url}/v1/chat/completions`, {
    messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }],
  });
  assert.equal(image.status, 400);
  assert.equal(image.body.error.param, 'messages[0].content[0]');
  const notJson = await postJson(`${server.url}/v1/completions`, '{oops');
  assert.equal(notJson.status, 400);
  assert.ok(notJson.body.error.message.includes('JSON'));
  const schema = await postJson(`${server.url}/v1/chat/completions`, {
    messages: [{ role: 'user', content: 'Hi' }],
    response_format: { type: 'json_schema', json_schema: { name: 'x' } },
  });
  assert.equal(schema.status, 400);
  assert.equal(schema.body.error.param, 'response_format.json_schema.schema');

  const key = `dup-${Date.now()}`;
  const controller = new AbortController();
  const running = await post(
    '/v1/chat/completions',
    chat({ max_tokens: 300, logit_bias: banEndTokens(server) }),
    { 'X-Kindling-Stream': key },
    controller.signal,
  );
  const dup = await post('/v1/chat/completions', chat(), { 'X-Kindling-Stream': key });
  assert.equal(dup.status, 409);
  assert.equal(((await dup.json()) as { error: { code: string } }).error.code, 'conflict');
  controller.abort();
  await running.body?.cancel().catch(() => {});
  server.context.scheduler.abort(LOCAL_PRINCIPAL, key);
});

test('json_object output is a JSON object; a max_completion_tokens of 1 yields length', async () => {
  const one = await postJson(`${server.url}/v1/chat/completions`, {
    messages: [{ role: 'user', content: 'Hi' }],
    max_completion_tokens: 1,
    max_tokens: 50,
    logit_bias: banEndTokens(server),
  });
  assert.equal(one.body.usage.completion_tokens, 1);
  assert.equal(one.body.choices[0].finish_reason, 'length');
  const json = await postJson(`${server.url}/v1/chat/completions`, {
    messages: [{ role: 'user', content: 'Hi' }],
    max_tokens: 24,
    response_format: { type: 'json_object' },
  });
  assert.equal(json.status, 200);
  assert.ok(json.body.choices[0].message.content.startsWith('{'));
});

test('chat logprobs: one entry per token with at most top_logprobs alternatives; completions accept token-id prompts', async () => {
  const result = await postJson(`${server.url}/v1/chat/completions`, {
    messages: [{ role: 'user', content: 'Hi' }],
    max_tokens: 4,
    logprobs: true,
    top_logprobs: 2,
  });
  const content = result.body.choices[0].logprobs.content;
  // An end-of-generation token is counted in usage but has no text, so it gets no logprobs entry.
  const usage = result.body.usage.completion_tokens;
  if (result.body.choices[0].finish_reason === 'length') assert.equal(content.length, usage);
  else assert.ok(content.length === usage || content.length === usage - 1);
  for (const entry of content) {
    assert.deepEqual(Object.keys(entry), ['token', 'logprob', 'bytes', 'top_logprobs']);
    assert.ok(entry.top_logprobs.length <= 2);
  }
  const ids = (await postJson(`${server.url}/api/extra/tokencount`, { prompt: 'Once upon', special: false })).body.ids;
  const byIds = await postJson(`${server.url}/v1/completions`, { prompt: ids, max_tokens: 2 });
  const byText = await postJson(`${server.url}/v1/completions`, { prompt: 'Once upon', max_tokens: 2 });
  assert.equal(byIds.body.usage.prompt_tokens, byText.body.usage.prompt_tokens);
  const several = await postJson(`${server.url}/v1/completions`, { prompt: ['a', 'b'], max_tokens: 2 });
  assert.equal(several.status, 400);
  assert.equal(several.body.error.param, 'prompt');
});

test('a generation that fails after the stream started ends with an error payload, then [DONE]', async () => {
  // A valid grammar that no token can continue (a token id past the vocabulary) fails only once the generation
  // runs, after the 200 and its headers went out (a malformed grammar is a 400 before that).
  const response = await post('/v1/chat/completions', chat({ grammar: 'root ::= <[4294967295]>' }));
  assert.equal(response.status, 200);
  const list = events(await response.text());
  const error = JSON.parse(list.at(-2)?.data as string);
  assert.equal(error.error.type, 'invalid_request_error');
  assert.equal(error.error.param, 'grammar');
  const whole = await postJson(`${server.url}/v1/chat/completions`, {
    ...chat({ grammar: 'root ::= <[4294967295]>' }),
    stream: false,
  });
  assert.equal(whole.status, 400);
  assert.equal(whole.body.error.param, 'grammar');
});

test('the OpenAPI document at /api describes the OpenAI, Anthropic and Ollama routes', async () => {
  const doc = (await (await fetch(`${server.url}/api/openapi.json`)).json()) as { paths: Record<string, unknown> };
  for (const path of [
    '/v1/chat/completions',
    '/v1/completions',
    '/v1/models',
    '/v1/embeddings',
    '/v1/messages',
    '/v1/messages/count_tokens',
    '/api/generate',
    '/api/chat',
    '/api/tags',
    '/api/show',
  ]) {
    assert.ok(path in doc.paths, `${path} documented`);
  }
});

test('a connection cut inside the final group (after the finish chunk) resumes with the usage chunk and [DONE] only', async () => {
  const key = `final-group-${Date.now()}`;
  const payload = chat({ max_tokens: 4, stream_options: { include_usage: true } });
  const whole = events(await (await post('/v1/chat/completions', payload, { 'X-Kindling-Stream': key })).text());
  const [text, finish, usage, done] = whole.slice(-4);
  assert.equal(done?.data, '[DONE]');
  const part = Number(done?.id);
  assert.ok(Number.isInteger(part), 'the group’s last event carries the part’s id');
  assert.deepEqual(
    [finish?.id, usage?.id],
    [`${part - 1}.1`, `${part - 1}.2`],
    'the events before it get ids of their own, between the previous part’s and this one’s',
  );
  assert.ok(Number(text?.id) < Number(finish?.id));
  // The client saw the finish chunk, then the connection broke: it resumes with that chunk's id.
  const resumed = events(
    await (
      await post('/v1/chat/completions', payload, { 'X-Kindling-Stream': key, 'Last-Event-ID': String(finish?.id) })
    ).text(),
  );
  assert.deepEqual(resumed, [usage, done], 'nothing seen before is replayed');
  // Cut after the usage chunk: only [DONE] is left.
  const last = events(
    await (
      await post('/v1/chat/completions', payload, { 'X-Kindling-Stream': key, 'Last-Event-ID': String(usage?.id) })
    ).text(),
  );
  assert.deepEqual(last, [done]);
});
