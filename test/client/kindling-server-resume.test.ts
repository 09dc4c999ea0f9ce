import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createClient, type TextClient, type TextRequest } from '../../src/client/index.ts';
import { startFaultProxy } from '../support/fault-proxy.ts';
import { slowTestModelPath } from '../support/test-model.ts';
import { startTestServer } from '../support/test-server.ts';

const RETRY = { maxRetries: 20, baseDelayMs: 5, maxDelayMs: 50 };

/** Streams through `client`, checking every text event's id is newer than the last (no replayed token). */
async function streamChecked(client: TextClient, request: TextRequest) {
  const stream = client.stream(request);
  let lastId = 0;
  let reconnects = 0;
  for await (const event of stream) {
    if (event.type === 'status' && event.status === 'reconnecting') reconnects += 1;
    if (event.type !== 'text') continue;
    const id = Number(event.id);
    assert.ok(Number.isInteger(id) && id > lastId, `event id ${event.id} after ${lastId}`);
    lastId = id;
  }
  return { result: await stream.result, reconnects };
}

test('the SDK against the real Kindling server through the cutting proxy: same text as an uncut run (Kobold and OpenAI SSE)', async (t) => {
  const server = await startTestServer({ modelPath: slowTestModelPath() });
  const harsh = await startFaultProxy({ target: server.url, seed: 5, minBytes: 60, maxBytes: 900 });
  const mild = await startFaultProxy({ target: server.url, seed: 6, minBytes: 300, maxBytes: 2500 });
  t.after(async () => {
    await Promise.all([harsh.close(), mild.close()]);
    await server.close();
  });

  const kobold = { prompt: 'Once upon a time', seed: 2, maxTokens: 80, temperature: 0.8 };
  const uncutKobold = await createClient('kobold', { baseUrl: server.url }).stream(kobold).result;
  const cutKobold = await streamChecked(createClient('kobold', { baseUrl: harsh.url, retry: RETRY }), kobold);
  assert.equal(cutKobold.result.text, uncutKobold.text);
  assert.equal(cutKobold.result.stopReason, uncutKobold.stopReason);
  assert.ok(cutKobold.reconnects >= 3, `${cutKobold.reconnects} reconnects`);

  const chat = { messages: [{ role: 'user' as const, content: 'Hi' }], seed: 3, maxTokens: 60 };
  const uncutChat = await createClient('openai', { baseUrl: server.url }).stream(chat).result;
  const cutChat = await streamChecked(createClient('openai', { baseUrl: mild.url, resume: true, retry: RETRY }), chat);
  assert.equal(cutChat.result.text, uncutChat.text);
  assert.deepEqual(cutChat.result.usage, uncutChat.usage);
  assert.ok(harsh.cuts + mild.cuts >= 8, `${harsh.cuts} + ${mild.cuts} cuts`);
  t.diagnostic(`${harsh.cuts} + ${mild.cuts} cuts, ${cutKobold.reconnects} + ${cutChat.reconnects} reconnects`);
});
