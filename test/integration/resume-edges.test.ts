import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../../src/main.ts';
import type { Generation } from '../../src/scheduler/generation.ts';
import { koboldEvents, requestFrom } from '../support/from-address.ts';
import { slowTestModelPath } from '../support/test-model.ts';
import { LOCAL_PRINCIPAL, startTestServer } from '../support/test-server.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const tokens = (text: string) =>
  koboldEvents(text)
    .map((e) => e.data.token ?? '')
    .join('');

const chatChunks = (text: string) =>
  [...text.matchAll(/^data: (\{.*\})$/gm)].map((m) => JSON.parse(m[1] as string)).filter((c) => c.choices);
const chatContent = (text: string) =>
  chatChunks(text)
    .map((c) => c.choices[0]?.delta?.content ?? '')
    .join('');
const chatIds = (text: string) => new Set(chatChunks(text).map((c) => c.id));

/** Sends a stream request and drops the connection the moment the headers arrive: no event was read. */
function cutAtHeaders(url: string, body: unknown): Promise<string> {
  const target = new URL(url);
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        req.destroy();
        resolve(res.headers['x-kindling-generation'] as string);
      },
    );
    req.on('error', (error) => (error.message.includes('socket hang up') ? undefined : reject(error)));
    req.end(payload);
  });
}

async function ended(generation: Generation, deadlineMs = 20_000): Promise<void> {
  const started = Date.now();
  while (!generation.log.ended) {
    assert.ok(Date.now() - started < deadlineMs, `still running after ${deadlineMs} ms`);
    await sleep(10);
  }
}

describe('resume edge cases: every stream ends with its final event; a re-sent request reattaches', () => {
  let server: RunningServer;
  let streamUrl: string;
  before(async () => {
    // The slower test model (~2 ms a token) so a generation is still running when the client comes back.
    server = await startTestServer({ modelPath: slowTestModelPath(), contextSize: 2048 });
    streamUrl = `${server.url}/api/extra/generate/stream`;
  });
  after(async () => server.close());
  const stream = (body: unknown, headers: Record<string, string> = {}, path = '/api/extra/generate/stream') =>
    requestFrom('127.0.0.1', `${server.url}${path}`, { body, headers });
  const find = (key: string) => server.context.scheduler.find(LOCAL_PRINCIPAL, key) as Generation;

  test('Last-Event-ID past the end of a finished generation replays it whole, final event included', async () => {
    const body = { prompt: 'Once upon', max_length: 12, sampler_seed: 9, genkey: 'EDGE1' };
    const first = await stream(body);
    const whole = tokens(first.text);
    const finalId = koboldEvents(first.text).at(-1)?.id as string;
    assert.equal(koboldEvents(first.text).at(-1)?.data.finish_reason, 'length');
    const generation = find('EDGE1');

    for (const past of ['99999', String(Number(finalId) + 1), '123456789012345678901234567890']) {
      const again = await stream(body, { 'Last-Event-ID': past });
      assert.equal(again.status, 200);
      assert.equal(tokens(again.text), whole, `${past}: not an id of this generation, so the whole replay`);
      assert.equal(koboldEvents(again.text).at(-1)?.data.finish_reason, 'length', `${past}: final event`);
    }
    // A client that saw the final event gets the final event again, and nothing else.
    const atEnd = koboldEvents((await stream(body, { 'Last-Event-ID': finalId })).text);
    assert.equal(atEnd.length, 1);
    assert.equal(atEnd[0]?.id, finalId);
    assert.equal(atEnd[0]?.data.finish_reason, 'length');
    assert.equal(find('EDGE1'), generation, 'all of these read the one generation');
  });

  test('ids Number() would read (0x10, 1e300) are not ids: treated as absent, never an empty 200', async () => {
    const body = { prompt: 'Once upon', max_length: 12, sampler_seed: 9, genkey: 'EDGE2' };
    const first = await stream(body);
    const firstId = first.headers['x-kindling-generation'];
    for (const bogus of ['0x10', '1e300', '+3', '-1']) {
      const again = await stream(body, { 'Last-Event-ID': bogus });
      assert.equal(again.status, 200);
      const events = koboldEvents(again.text);
      assert.ok(events.length > 1, `${bogus}: a whole stream`);
      assert.equal(events.at(-1)?.data.finish_reason, 'length', `${bogus}: final event`);
      // Without a resume point this is the client's next request under its fixed key (the first one was read
      // to its end): a new generation, with the same seed the same text.
      assert.notEqual(again.headers['x-kindling-generation'], firstId);
      assert.equal(tokens(again.text), tokens(first.text));
    }
  });

  test('OpenAI and Anthropic streams also end with their final events when resumed past the end', async () => {
    const chat = { messages: [{ role: 'user', content: 'Hi' }], max_tokens: 6, stream: true, seed: 4 };
    const first = await stream(chat, { 'X-Kindling-Stream': 'EDGE-OAI' }, '/v1/chat/completions');
    assert.match(first.text, /data: \[DONE\]\n\n$/);
    const past = await stream(
      chat,
      { 'X-Kindling-Stream': 'EDGE-OAI', 'Last-Event-ID': '99999' },
      '/v1/chat/completions',
    );
    // A replay coalesces the text into fewer chunks: the same content, the same completion id, the same end.
    assert.ok(chatContent(first.text).length > 0);
    assert.equal(chatContent(past.text), chatContent(first.text), 'replayed whole');
    assert.match(past.text, /"finish_reason":"length"/);
    assert.match(past.text, /data: \[DONE\]\n\n$/);
    assert.equal(chatIds(past.text).size, 1);
    assert.deepEqual(chatIds(past.text), chatIds(first.text));
    const lastId = [...first.text.matchAll(/^id: (.*)$/gm)].at(-1)?.[1] as string;
    const atEnd = await stream(
      chat,
      { 'X-Kindling-Stream': 'EDGE-OAI', 'Last-Event-ID': lastId },
      '/v1/chat/completions',
    );
    assert.match(atEnd.text, /data: \[DONE\]\n\n$/, 'a client that saw [DONE] is told again that it is done');

    const messages = { model: 'x', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 6, stream: true, seed: 4 };
    const anthropic = await stream(messages, { 'X-Kindling-Stream': 'EDGE-ANT' }, '/v1/messages');
    const again = await stream(messages, { 'X-Kindling-Stream': 'EDGE-ANT', 'Last-Event-ID': '99999' }, '/v1/messages');
    const deltas = (text: string) => [...text.matchAll(/"text":"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]).join('');
    assert.ok(deltas(anthropic.text).length > 0);
    assert.equal(deltas(again.text), deltas(anthropic.text));
    assert.match(again.text, /event: message_stop/);
  });

  test('a client cut before its first event that re-sends the same request (no Last-Event-ID) gets a replay', async () => {
    const body = { prompt: 'Once', max_length: 1500, ban_eos_token: true, sampler_seed: 5, genkey: 'EDGE3' };
    const id = await cutAtHeaders(streamUrl, body);
    const generation = find('EDGE3');
    assert.equal(generation.id, id);
    await sleep(100);
    assert.equal(generation.status, 'running');
    const again = await stream(body);
    assert.equal(again.status, 200, 'not a 409 while it runs');
    assert.equal(again.headers['x-kindling-generation'], id, 'the same generation');
    assert.equal(tokens(again.text), generation.log.text, 'replayed from the start, then live to the end');
    assert.equal(koboldEvents(again.text).at(-1)?.data.finish_reason, 'length');
  });

  test('…and after it ended unseen: the finished generation is replayed, not silently replaced', async () => {
    const body = { prompt: 'Once', max_length: 150, ban_eos_token: true, sampler_seed: 6, genkey: 'EDGE4' };
    const id = await cutAtHeaders(streamUrl, body);
    const generation = find('EDGE4');
    await ended(generation);
    assert.equal(generation.stopReason, 'max-tokens', 'a keyed generation outlives its cut client');
    const again = await stream(body);
    assert.equal(again.headers['x-kindling-generation'], id, 'the same generation, not a new one');
    assert.equal(tokens(again.text), generation.log.text);
    assert.equal(koboldEvents(again.text).at(-1)?.data.finish_reason, 'length');

    // Now its end was delivered: the same request again is the client's next request under a fixed key.
    const next = await stream(body);
    assert.notEqual(next.headers['x-kindling-generation'], id, 'a new generation');
    assert.equal(tokens(next.text), generation.log.text, 'same seed, same text');
    // A different request under a finished key is a new generation too.
    const other = await stream({ ...body, prompt: 'Twice', max_length: 4 });
    assert.equal(other.status, 200);
    assert.notEqual(other.headers['x-kindling-generation'], next.headers['x-kindling-generation']);
  });

  test('a different request under a live key stays a 409; the same request reattaches', async () => {
    const body = { prompt: 'Once', max_length: 1500, ban_eos_token: true, genkey: 'EDGE5' };
    const id = await cutAtHeaders(streamUrl, body);
    const conflict = await stream({ ...body, max_length: 1499 });
    assert.equal(conflict.status, 409, 'one sampling field differs: a different request');
    assert.equal(conflict.json.detail.type, 'conflict');
    const viaChat = await stream(
      { messages: [{ role: 'user', content: 'Once' }], max_tokens: 1500, stream: true },
      { 'X-Kindling-Stream': 'EDGE5' },
      '/v1/chat/completions',
    );
    assert.equal(viaChat.status, 409, 'another protocol under a live key: a conflict, not a replay');
    await requestFrom('127.0.0.1', `${server.url}/api/extra/abort`, { body: { genkey: 'EDGE5' } });
    const same = await stream(body);
    assert.equal(same.headers['x-kindling-generation'], id);
    assert.equal(koboldEvents(same.text).at(-1)?.data.finish_reason, 'length');
  });
});
