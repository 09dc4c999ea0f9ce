import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createClient, type TextClient, type TextRequest } from '../../src/client/index.ts';
import { within } from '../support/deadline.ts';
import { startFaultProxy } from '../support/fault-proxy.ts';
import { slowTestModelPath } from '../support/test-model.ts';
import { postJson, startTestServer } from '../support/test-server.ts';

const RETRY = { maxRetries: 20, baseDelayMs: 5, maxDelayMs: 50 };
// The cut offsets are sized for plain streams; a gzip stream is about four times shorter and would be cut less.
const PLAIN = { 'accept-encoding': 'identity' };

/** Streams through `client`, checking every text event's id is newer than the last (no replayed token). */
async function streamChecked(client: TextClient, request: TextRequest) {
  const stream = client.stream(request);
  let lastId = 0;
  let reconnects = 0;
  for await (const event of within(stream, 120_000, 'the stream to end')) {
    if (event.type === 'status' && event.status === 'reconnecting') reconnects += 1;
    if (event.type !== 'text') continue;
    const id = Number(event.id);
    assert.ok(Number.isInteger(id) && id > lastId, `event id ${event.id} after ${lastId}`);
    lastId = id;
  }
  return { result: await stream.result, reconnects };
}

/** The server's own record of a generation: its whole text, by key. */
async function generatedText(baseUrl: string, genkey: string): Promise<string> {
  const check = (await postJson(`${baseUrl}/api/extra/generate/check`, { genkey })).body.results[0];
  assert.equal(check.status, 'done');
  return check.text;
}

// The cut runs are compared with the server's record of that same generation, not with a separate uncut run:
// the second run of a prompt reuses the first one's cache and evaluates only its last token, and llama.cpp's
// logits for one token decoded alone differ in the last bits from the same token in a longer batch.
test('the SDK against the real Kindling server through the cutting proxy: exactly the text the server generated (Kobold and OpenAI SSE)', async (t) => {
  const server = await startTestServer({ modelPath: slowTestModelPath() });
  const harsh = await startFaultProxy({ target: server.url, seed: 5, minBytes: 60, maxBytes: 900 });
  const mild = await startFaultProxy({ target: server.url, seed: 6, minBytes: 300, maxBytes: 2500 });
  t.after(async () => {
    await Promise.all([harsh.close(), mild.close()]);
    await server.close();
  });

  const kobold = { prompt: 'Once upon a time', seed: 2, maxTokens: 80, temperature: 0.8, genkey: 'CUT-KOBOLD' };
  const uncutKobold = await createClient('kobold', { baseUrl: server.url }).stream({ ...kobold, genkey: 'UNCUT' })
    .result;
  const cutKobold = await streamChecked(
    createClient('kobold', { baseUrl: harsh.url, retry: RETRY, headers: PLAIN }),
    kobold,
  );
  assert.ok(cutKobold.result.text.length > 0);
  assert.equal(cutKobold.result.text, await generatedText(server.url, 'CUT-KOBOLD'));
  assert.ok(['length', 'stop'].includes(cutKobold.result.stopReason), cutKobold.result.stopReason);
  assert.ok(uncutKobold.text.length > 0);
  assert.ok(cutKobold.reconnects >= 3, `${cutKobold.reconnects} reconnects`);

  const chat = { messages: [{ role: 'user' as const, content: 'Hi' }], seed: 3, maxTokens: 60, genkey: 'CUT-CHAT' };
  const uncutChat = await createClient('openai', { baseUrl: server.url }).stream({ ...chat, genkey: 'UNCUT-CHAT' })
    .result;
  const cutChat = await streamChecked(
    createClient('openai', { baseUrl: mild.url, resume: true, retry: RETRY, headers: PLAIN }),
    chat,
  );
  assert.ok(cutChat.result.text.length > 0);
  assert.equal(cutChat.result.text, await generatedText(server.url, 'CUT-CHAT'));
  assert.equal(cutChat.result.usage?.promptTokens, uncutChat.usage?.promptTokens);
  const completion = cutChat.result.usage?.completionTokens ?? 0;
  assert.ok(completion > 0 && completion <= 60, `${completion} completion tokens`);
  assert.ok(harsh.cuts + mild.cuts >= 8, `${harsh.cuts} + ${mild.cuts} cuts`);
  t.diagnostic(`${harsh.cuts} + ${mild.cuts} cuts, ${cutKobold.reconnects} + ${cutChat.reconnects} reconnects`);
});
