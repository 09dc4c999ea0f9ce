import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createClient, type StreamEvent } from '../../src/client/index.ts';
import { within } from '../support/deadline.ts';
import { startFakeKobold } from '../support/fake-providers/fake-kobold.ts';
import { startFakeOpenRouter } from '../support/fake-providers/fake-openrouter.ts';
import { startFaultProxy } from '../support/fault-proxy.ts';

const FAST_RETRY = { maxRetries: 12, baseDelayMs: 2, maxDelayMs: 20 };

async function collect(stream: AsyncIterable<StreamEvent>) {
  const texts: Array<{ text: string; id?: string }> = [];
  let reconnects = 0;
  for await (const event of within(stream, 120_000, 'the stream to end')) {
    if (event.type === 'text')
      texts.push(event.id === undefined ? { text: event.text } : { text: event.text, id: event.id });
    if (event.type === 'status' && event.status === 'reconnecting') reconnects += 1;
  }
  return { texts, reconnects };
}

test('Kobold SSE through a proxy that cuts connections at random offsets: same text as an uncut run, every token once', async (t) => {
  const tokenCount = 120;
  const fake = await startFakeKobold({ flavor: 'kindling', tokenCount, tokenIntervalMs: 1 });
  const proxy = await startFaultProxy({ target: fake.url, seed: 7, minBytes: 40, maxBytes: 1000 });
  t.after(() => Promise.all([proxy.close(), fake.close()]));

  const direct = createClient('kobold', { baseUrl: fake.url });
  const cut = createClient('kobold', { baseUrl: proxy.url, retry: FAST_RETRY });
  let reconnects = 0;
  for (const seed of [101, 102, 103]) {
    const uncut = await direct.stream({ prompt: 'Once', seed, maxTokens: tokenCount }).result;
    assert.equal(uncut.text, fake.expectedText(seed, tokenCount));

    const stream = cut.stream({ prompt: 'Once', seed, maxTokens: tokenCount });
    const run = await collect(stream);
    const result = await stream.result;
    reconnects += run.reconnects;
    assert.equal(result.text, uncut.text, `seed ${seed}: text differs from the uncut run`);
    assert.equal(result.stopReason, 'length');
    // One token per event in the fake: the ids must be exactly 1..N, in order, so nothing was lost or repeated.
    assert.deepEqual(
      run.texts.map((e) => Number(e.id)),
      Array.from({ length: tokenCount }, (_, i) => i + 1),
    );
    assert.equal(run.texts.map((e) => e.text).join(''), uncut.text);
  }
  assert.ok(proxy.cuts >= 50, `only ${proxy.cuts} cuts`);
  t.diagnostic(`${proxy.cuts} cuts, ${reconnects} reconnects`);
  assert.ok(reconnects >= 50, `only ${reconnects} reconnects`);
});

test('OpenAI-format SSE on a resumable server through the cutting proxy: same text as an uncut run', async (t) => {
  const tokenCount = 100;
  const fake = await startFakeOpenRouter({ resumable: true, tokenCount, tokenIntervalMs: 1, processingComments: 1 });
  const proxy = await startFaultProxy({ target: fake.url, seed: 9, minBytes: 60, maxBytes: 2500 });
  t.after(() => Promise.all([proxy.close(), fake.close()]));

  const direct = createClient('openai', { baseUrl: fake.url, model: 'fake/model-a' });
  const cut = createClient('openai', { baseUrl: proxy.url, model: 'fake/model-a', resume: true, retry: FAST_RETRY });
  for (const seed of [201, 202]) {
    const request = { messages: [{ role: 'user' as const, content: 'go' }], seed, maxTokens: tokenCount };
    const uncut = await direct.stream(request).result;
    const stream = cut.stream(request);
    const run = await collect(stream);
    assert.equal((await stream.result).text, uncut.text);
    assert.deepEqual(
      run.texts.map((e) => Number(e.id)),
      Array.from({ length: tokenCount }, (_, i) => i + 1),
    );
  }
  assert.ok(proxy.cuts >= 10, `only ${proxy.cuts} cuts`);
});
