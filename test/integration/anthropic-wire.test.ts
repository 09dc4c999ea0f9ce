import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { RunningServer } from '../../src/main.ts';
import { deadlineSignal, readUntil } from '../support/deadline.ts';
import { LOCAL_PRINCIPAL, postJson, startTestServer } from '../support/test-server.ts';

/** Anthropic Messages on the wire: event framing and order, usage, resume, error envelope. */
let server: RunningServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.close());

const body = (extra: Record<string, unknown> = {}) => ({
  model: 'x',
  max_tokens: 8,
  messages: [{ role: 'user', content: 'Hi' }],
  stream: true,
  ...extra,
});
const post = (payload: unknown, headers: Record<string, string> = {}, signal?: AbortSignal) =>
  fetch(`${server.url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(payload),
    signal: deadlineSignal(60_000, 'the answer to POST /v1/messages', signal),
  });

/**
 * Every event must be exactly `id: n` (or `n.i` inside a part's group), `event: <type>`, one `data:` line whose
 * `type` is the event name, blank line.
 */
function events(text: string): Array<{ id: number; type: string; data: any }> {
  assert.ok(text.endsWith('\n\n'));
  assert.ok(!text.includes('[DONE]'), 'Anthropic streams have no [DONE]');
  const out: Array<{ id: number; type: string; data: any }> = [];
  for (const block of text.split('\n\n').slice(0, -1)) {
    if (block.startsWith(': ')) continue;
    const match = /^id: (\d+(?:\.\d)?)\nevent: ([a-z_]+)\ndata: (.+)$/.exec(block);
    assert.ok(match, `framed as id/event/data: ${JSON.stringify(block)}`);
    const data = JSON.parse(match[3] as string);
    assert.equal(data.type, match[2], 'data.type repeats the event name');
    out.push({ id: Number(match[1]), type: match[2] as string, data });
  }
  return out;
}

test('stream: message_start, content_block_start, ping, deltas, content_block_stop, message_delta, message_stop', async () => {
  const response = await post(body());
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  const list = events(await response.text());
  const types = list.map((e) => e.type);
  assert.deepEqual(types.slice(0, 3), ['message_start', 'content_block_start', 'ping']);
  assert.deepEqual(types.slice(-3), ['content_block_stop', 'message_delta', 'message_stop']);
  assert.ok(types.slice(3, -3).every((t) => t === 'content_block_delta'));
  const start = list[0]?.data.message;
  assert.deepEqual(Object.keys(start), [
    'id',
    'type',
    'role',
    'model',
    'content',
    'stop_reason',
    'stop_sequence',
    'usage',
  ]);
  assert.match(start.id, /^msg_/);
  const count = await postJson(`${server.url}/v1/messages/count_tokens`, {
    model: 'x',
    messages: [{ role: 'user', content: 'Hi' }],
  });
  assert.equal(start.usage.input_tokens, count.body.input_tokens);
  assert.equal(start.usage.output_tokens, 0);
  assert.deepEqual(list[1]?.data, { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
  const delta = list.at(-2)?.data;
  assert.ok(['end_turn', 'max_tokens'].includes(delta.delta.stop_reason));
  assert.equal(delta.delta.stop_sequence, null);
  const deltas = list.filter((e) => e.type === 'content_block_delta');
  assert.ok(
    deltas.every((e) => e.data.index === 0 && e.data.delta.type === 'text_delta' && e.data.delta.text.length > 0),
  );
  const ids = list.map((e) => e.id);
  assert.deepEqual(
    [...ids].sort((a, b) => a - b),
    ids,
  );
});

test('non-stream and stream agree for the same greedy request; system as text blocks is accepted', async () => {
  const payload = {
    model: 'x',
    max_tokens: 10,
    temperature: 0,
    system: [{ type: 'text', text: 'Be kind.' }],
    messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }],
  };
  const whole = await postJson(`${server.url}/v1/messages`, payload);
  assert.equal(whole.status, 200);
  const list = events(await (await post({ ...payload, stream: true })).text());
  const streamed = list
    .filter((e) => e.type === 'content_block_delta')
    .map((e) => e.data.delta.text)
    .join('');
  assert.equal(streamed, whole.body.content[0].text);
  assert.equal(list.at(-2)?.data.usage.output_tokens, whole.body.usage.output_tokens);
  assert.equal(list.at(-2)?.data.delta.stop_reason, whole.body.stop_reason);
});

test('a keyed stream resumes after Last-Event-ID: no second generation, nothing repeated or lost', async () => {
  const key = `anthropic-${Date.now()}`;
  const payload = body({ max_tokens: 40, temperature: 0 });
  const controller = new AbortController();
  const first = await post(payload, { 'Idempotency-Key': key }, controller.signal);
  const reader = (first.body as ReadableStream<Uint8Array>).getReader();
  const seen = await readUntil(
    reader,
    (text) => (text.match(/event: content_block_delta\n/g) ?? []).length >= 2 && text.endsWith('\n\n'),
    20_000,
    'two content_block_delta events',
  );
  controller.abort();
  const before = events(seen);
  const generation = server.context.scheduler.find(LOCAL_PRINCIPAL, key);
  assert.ok(generation);
  const resumed = events(
    await (await post(payload, { 'X-Kindling-Stream': key, 'Last-Event-ID': String(before.at(-1)?.id) })).text(),
  );
  assert.equal(server.context.scheduler.find(LOCAL_PRINCIPAL, key), generation, 'no new generation');
  assert.equal(
    resumed[0]?.type,
    'content_block_delta',
    'replay starts after the last event seen, not with message_start',
  );
  const all = [...before, ...resumed];
  const text = all
    .filter((e) => e.type === 'content_block_delta')
    .map((e) => e.data.delta.text)
    .join('');
  assert.equal(text, generation.log.text);
  assert.equal(all.filter((e) => e.type === 'message_start').length, 1);
  assert.equal(all.at(-1)?.type, 'message_stop');
});

test('a connection cut inside the opening group (after message_start) resumes with content_block_start, nothing repeated', async () => {
  const key = `anthropic-opening-${Date.now()}`;
  const payload = body({ max_tokens: 6, temperature: 0 });
  const whole = events(await (await post(payload, { 'X-Kindling-Stream': key })).text());
  const [start, block, ping] = whole;
  assert.deepEqual([start?.type, block?.type, ping?.type], ['message_start', 'content_block_start', 'ping']);
  assert.ok(Number.isInteger(ping?.id), 'the group’s last event carries the start part’s id');
  const previous = (ping?.id ?? 0) - 1;
  assert.deepEqual([start?.id, block?.id], [Number(`${previous}.1`), Number(`${previous}.2`)]);
  const resume = async (lastId: number | undefined) =>
    events(await (await post(payload, { 'X-Kindling-Stream': key, 'Last-Event-ID': String(lastId) })).text());
  const text = (list: typeof whole) =>
    list
      .filter((e) => e.type === 'content_block_delta')
      .map((e) => e.data.delta.text)
      .join('');

  const afterStart = await resume(start?.id);
  assert.deepEqual(afterStart.slice(0, 2), [block, ping], 'the rest of the group, with its own ids');
  assert.equal(afterStart.filter((e) => e.type === 'message_start').length, 0, 'message_start is not repeated');
  assert.ok(afterStart.every((e) => e.id > (start?.id ?? 0)));
  assert.equal(text(afterStart), text(whole));
  assert.deepEqual(afterStart.at(-1), whole.at(-1));

  const afterBlock = await resume(block?.id);
  assert.deepEqual(afterBlock[0], ping);
  assert.equal(afterBlock.filter((e) => e.type === 'content_block_start').length, 0);
  assert.equal(text(afterBlock), text(whole));
});

test('errors: Anthropic envelope, field named, HTTP status matching the type', async () => {
  const missing = await postJson(`${server.url}/v1/messages`, {
    model: 'x',
    messages: [{ role: 'user', content: 'Hi' }],
  });
  assert.equal(missing.status, 400);
  assert.deepEqual(Object.keys(missing.body), ['type', 'error']);
  assert.equal(missing.body.type, 'error');
  assert.equal(missing.body.error.type, 'invalid_request_error');
  assert.match(missing.body.error.message, /max_tokens/);
  const tools = await postJson(`${server.url}/v1/messages`, {
    model: 'x',
    max_tokens: 3,
    tools: [{ name: 't' }],
    messages: [{ role: 'user', content: 'Hi' }],
  });
  assert.equal(tools.status, 400);
  assert.match(tools.body.error.message, /^tools:/);
  const role = await postJson(`${server.url}/v1/messages`, {
    model: 'x',
    max_tokens: 3,
    messages: [{ role: 'system', content: 'Hi' }],
  });
  assert.equal(role.status, 400);
  assert.match(role.body.error.message, /messages\[0\]\.role/);
});

test('a generation that fails after the stream started ends with an error event in Anthropic’s envelope', async () => {
  // `grammar` is a Kindling extension here too. A valid grammar that no token of the model can continue (a
  // token id past the vocabulary) fails only once the generation runs; a malformed one is a 400 up front.
  const response = await post(body({ grammar: 'root ::= <[4294967295]>' }));
  assert.equal(response.status, 200);
  const list = events(await response.text());
  const last = list.at(-1);
  assert.equal(last?.type, 'error');
  assert.equal(last?.data.error.type, 'invalid_request_error');
  assert.match(last?.data.error.message, /^grammar:/);
});
