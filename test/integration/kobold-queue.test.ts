import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../../src/main.ts';
import { withDeadline } from '../support/deadline.ts';
import { parseLikeLite } from '../support/lite-sse-parser.ts';
import { openStream } from '../support/sse-capture.ts';
import { slowTestModelPath } from '../support/test-model.ts';
import { getJson, postJson, startTestServer } from '../support/test-server.ts';

const LONG = { prompt: 'x', max_length: 2000, ban_eos_token: true };

describe('check, abort and the queue (one slot, one waiting place)', () => {
  let server: RunningServer;
  const path = (p: string) => `${server.url}${p}`;
  before(async () => {
    server = await startTestServer({
      modelPath: slowTestModelPath(),
      contextSize: 2048,
      parallel: 1,
      maxQueue: 1,
      heartbeatMs: 100,
    });
  });
  after(async () => server.close());

  async function waitIdle(): Promise<void> {
    for (let i = 0; i < 400; i++) {
      const perf = (await getJson(path('/api/extra/perf'))).body;
      if (perf.idle === 1) return;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error('server did not become idle');
  }

  test('check by genkey grows monotonically; other keys and key-less GET see nothing', async () => {
    const stream = await openStream(path('/api/extra/generate/stream'), { ...LONG, genkey: 'K1' });
    await stream.until((text) => parseLikeLite(text).events.length >= 3);
    const texts: string[] = [];
    for (let i = 0; i < 4; i++) {
      const { body } = await postJson(path('/api/extra/generate/check'), { genkey: 'K1' });
      assert.equal(body.results[0].status, 'running');
      texts.push(body.results[0].text);
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
    for (let i = 1; i < texts.length; i++) assert.ok((texts[i] as string).startsWith(texts[i - 1] as string));
    assert.ok((texts.at(-1) as string).length > 0);
    assert.deepEqual((await postJson(path('/api/extra/generate/check'), { genkey: 'OTHER' })).body.results[0].text, '');
    assert.equal((await getJson(path('/api/extra/generate/check'))).body.results[0].text, '');
    assert.deepEqual((await postJson(path('/api/extra/abort'), { genkey: 'OTHER' })).body, {
      success: 'false',
      done: 'false',
    });
    assert.deepEqual((await postJson(path('/api/extra/abort'), { genkey: 'K1' })).body, {
      success: 'true',
      done: 'true',
    });
    await withDeadline(stream.done, 30_000, 'the stream stream to end');
    const final = (await postJson(path('/api/extra/generate/check'), { genkey: 'K1' })).body.results[0];
    assert.equal(final.status, 'done');
    assert.equal(final.finish_reason, 'length');
    assert.ok(
      parseLikeLite(stream.text)
        .events.map((e) => e.data.token)
        .join('')
        .startsWith(texts.at(-1) as string),
    );
    await waitIdle();
  });

  test('key-less: GET check shows the running text, abort without a key stops it', async () => {
    const sync = postJson(path('/api/v1/generate'), LONG);
    let partial = '';
    for (let i = 0; i < 200 && partial === ''; i++) {
      partial = (await getJson(path('/api/extra/generate/check'))).body.results[0].text;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.ok(partial.length > 0);
    assert.deepEqual((await postJson(path('/api/extra/abort'), '')).body, { success: 'true', done: 'true' });
    const { status, body } = await sync;
    assert.equal(status, 200);
    assert.equal(body.results[0].finish_reason, 'length');
    assert.ok(body.results[0].text.startsWith(partial));
    assert.ok(body.results[0].completion_tokens < 2000);
  });

  test('queued: position is visible in check and heartbeats; the next waiter gets 503 with Retry-After', async () => {
    const running = await openStream(path('/api/extra/generate/stream'), { ...LONG, genkey: 'RUN' });
    await running.until((text) => parseLikeLite(text).events.length >= 1);
    const queued = await openStream(path('/api/extra/generate/stream'), { ...LONG, genkey: 'WAIT' });
    assert.equal(queued.response.status, 200, 'a queued stream gets its headers at once');
    await queued.until((text) => text.includes(': ping queued 1'));
    const check = (await postJson(path('/api/extra/generate/check'), { genkey: 'WAIT' })).body.results[0];
    assert.deepEqual([check.status, check.queue_position, check.text], ['queued', 1, '']);
    const perf = (await getJson(path('/api/extra/perf'))).body;
    assert.deepEqual([perf.queue, perf.idle], [1, 0]);

    const rejected = await postJson(path('/api/v1/generate'), LONG);
    assert.equal(rejected.status, 503);
    assert.equal(rejected.body.detail.type, 'service_unavailable');
    assert.ok(Number(rejected.headers.get('retry-after')) > 0);

    // Aborting the queued one by key ends it at once without ever running.
    assert.deepEqual((await postJson(path('/api/extra/abort'), { genkey: 'WAIT' })).body, {
      success: 'true',
      done: 'true',
    });
    await withDeadline(queued.done, 30_000, 'the queued stream to end');
    assert.deepEqual(parseLikeLite(queued.text).events, [
      { event: 'message', data: { token: '', finish_reason: 'length' } },
    ]);
    await postJson(path('/api/extra/abort'), { genkey: 'RUN' });
    await withDeadline(running.done, 30_000, 'the running stream to end');
    await waitIdle();
  });

  test('a queued client that disconnects is dropped and never runs', async () => {
    const before = (await getJson(path('/api/extra/perf'))).body.total_gens;
    const running = await openStream(path('/api/extra/generate/stream'), { ...LONG, genkey: 'RUN2' });
    await running.until((text) => parseLikeLite(text).events.length >= 1);
    const controller = new AbortController();
    const queued = await openStream(path('/api/extra/generate/stream'), LONG, {}, controller.signal);
    await queued.until((text) => text.includes('queued 1'));
    controller.abort();
    for (let i = 0; i < 100 && (await getJson(path('/api/extra/perf'))).body.queue !== 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    assert.equal((await getJson(path('/api/extra/perf'))).body.queue, 0);
    await postJson(path('/api/extra/abort'), { genkey: 'RUN2' });
    await withDeadline(running.done, 30_000, 'the running stream to end');
    await waitIdle();
    assert.equal(
      (await getJson(path('/api/extra/perf'))).body.total_gens,
      before + 1,
      'only the running generation counted',
    );
  });

  test('abort frees the slot for the next queued request at once', async () => {
    const first = postJson(path('/api/v1/generate'), { ...LONG, genkey: 'A1' });
    for (
      let i = 0;
      i < 200 &&
      (await postJson(path('/api/extra/generate/check'), { genkey: 'A1' })).body.results[0].status !== 'running';
      i++
    ) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const second = postJson(path('/api/v1/generate'), {
      prompt: 'y',
      max_length: 5,
      ban_eos_token: true,
      genkey: 'A2',
    });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(
      (await postJson(path('/api/extra/generate/check'), { genkey: 'A2' })).body.results[0].status,
      'queued',
    );
    const abortedAt = Date.now();
    await postJson(path('/api/extra/abort'), { genkey: 'A1' });
    const done = await second;
    assert.equal(done.body.results[0].completion_tokens, 5);
    assert.ok(Date.now() - abortedAt < 2000);
    assert.ok((await first).body.results[0].completion_tokens < 2000);
  });

  test('heartbeats keep the stream alive while a long prompt is processed, and Lite still parses it', async () => {
    const stream = await openStream(path('/api/extra/generate/stream'), {
      prompt: ' the'.repeat(1900),
      max_length: 2,
      ban_eos_token: true,
    });
    await withDeadline(stream.done, 30_000, 'the stream stream to end');
    const beforeFirstEvent = stream.text.slice(0, stream.text.indexOf('event: message'));
    assert.match(beforeFirstEvent, /^: ping\n\n/m);
    const { events } = parseLikeLite(stream.text);
    assert.equal(events.at(-1)?.data.finish_reason, 'length');
  });
});
