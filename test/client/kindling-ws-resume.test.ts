import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { KindlingWsClient, type WebSocketConstructorLike } from '../../src/client/index.ts';
import { within } from '../support/deadline.ts';
import { startFaultProxy } from '../support/fault-proxy.ts';
import { slowTestModelPath } from '../support/test-model.ts';
import { postJson, startTestServer } from '../support/test-server.ts';

/**
 * Without permessage-deflate: the proxy cuts by byte counts sized for plain frames, and deflated ones would carry
 * the same tokens in a fraction of the bytes (too few cuts to prove the resume).
 */
class PlainWebSocket extends WebSocket {
  constructor(url: string, protocols?: string | string[]) {
    super(url, protocols, { perMessageDeflate: false });
  }
}

const RETRY = { maxRetries: 30, baseDelayMs: 5, maxDelayMs: 50 };

test('WebSocket: concurrent generations through the cutting proxy end with exactly the text the server generated', async (t) => {
  const server = await startTestServer({ modelPath: slowTestModelPath(), contextSize: 1024 });
  const proxy = await startFaultProxy({ target: server.url, seed: 11, minBytes: 300, maxBytes: 1500 });
  const cut = new KindlingWsClient({
    baseUrl: proxy.url,
    WebSocket: PlainWebSocket as unknown as WebSocketConstructorLike,
    retry: RETRY,
  });
  t.after(async () => {
    cut.close();
    await proxy.close();
    await server.close();
  });

  // Three generations on two slots. Their text is compared with the server's own record of each generation
  // (check by genkey), not with separate runs: batched decoding is not bit-exact across batch compositions.
  const requests = [1, 2, 3].map((seed) => ({
    prompt: `Story ${seed}`,
    seed,
    maxTokens: 120,
    temperature: 0.9,
    genkey: `WS-CUT-${seed}`,
    extra: { ban_eos_token: true },
  }));
  let reconnects = 0;
  const results = await Promise.all(
    requests.map(async (request) => {
      const stream = cut.stream(request);
      let lastId = 0;
      let text = '';
      for await (const event of within(stream, 120_000, 'the stream to end')) {
        if (event.type === 'status' && event.status === 'reconnecting') reconnects++;
        if (event.type !== 'text') continue;
        assert.ok(Number(event.id) > lastId, `id ${event.id} after ${lastId}`);
        lastId = Number(event.id);
        text += event.text;
      }
      const result = await stream.result;
      assert.equal(text, result.text);
      return result;
    }),
  );
  for (const [i, result] of results.entries()) {
    const check = (await postJson(`${server.url}/api/extra/generate/check`, { genkey: requests[i]?.genkey })).body
      .results[0];
    assert.equal(check.status, 'done');
    assert.ok(check.text.length > 0);
    assert.equal(result.text, check.text);
    assert.equal(result.stopReason, 'length');
    assert.equal(result.usage?.completionTokens, 120);
  }
  assert.ok(proxy.cuts >= 5, `${proxy.cuts} cuts`);
  t.diagnostic(`${proxy.cuts} cuts, ${reconnects} reconnect events`);
});

test('WebSocket: aborting one stream stops only that generation on the server', async (t) => {
  const server = await startTestServer({ modelPath: slowTestModelPath(), contextSize: 2048 });
  const client = new KindlingWsClient({
    baseUrl: server.url,
    WebSocket: WebSocket as unknown as WebSocketConstructorLike,
  });
  t.after(async () => {
    client.close();
    await server.close();
  });
  const long = client.stream({ prompt: 'x', maxTokens: 2000, genkey: 'WS-ABORT', extra: { ban_eos_token: true } });
  const short = client.stream({ prompt: 'y', maxTokens: 20, seed: 1, extra: { ban_eos_token: true } });
  for await (const event of within(long, 120_000, 'the stream to end')) {
    if (event.type === 'text') break;
  }
  await assert.rejects(long.result, (error: Error) => error.name === 'AbortedError');
  const done = await short.result;
  assert.equal(done.usage?.completionTokens, 20);
  const check = await (
    await fetch(`${server.url}/api/extra/generate/check`, {
      method: 'POST',
      body: JSON.stringify({ genkey: 'WS-ABORT' }),
    })
  ).json();
  for (let i = 0; i < 100 && check.results[0].status !== 'done'; i++) await new Promise((r) => setTimeout(r, 20));
  const final = await (
    await fetch(`${server.url}/api/extra/generate/check`, {
      method: 'POST',
      body: JSON.stringify({ genkey: 'WS-ABORT' }),
    })
  ).json();
  assert.equal(final.results[0].status, 'done');
  assert.equal(final.results[0].finish_reason, 'length');
});
