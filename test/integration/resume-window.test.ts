import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../../src/main.ts';
import type { Generation } from '../../src/scheduler/generation.ts';
import { koboldEvents } from '../support/from-address.ts';
import { openStream } from '../support/sse-capture.ts';
import { testModelPath } from '../support/test-model.ts';
import { LOCAL_PRINCIPAL, postJson, startTestServer } from '../support/test-server.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const tokens = (text: string) =>
  koboldEvents(text)
    .map((e) => e.data.token ?? '')
    .join('');

/** Waits (with a deadline) until the generation has ended; returns how long that took. */
async function ended(generation: Generation, deadlineMs: number): Promise<number> {
  const started = Date.now();
  while (!generation.log.ended) {
    assert.ok(Date.now() - started < deadlineMs, `still running after ${deadlineMs} ms`);
    await sleep(10);
  }
  return Date.now() - started;
}

describe('--resume-window 1: a keyed generation whose readers all left stops after 1 s', () => {
  let server: RunningServer;
  let url: string;
  before(async () => {
    // A slower random model (several ms a token, 4096 context) so a 3000-token generation outlives every window
    // below even on an idle machine.
    const modelPath = testModelPath('F16', {
      hparams: {
        contextLength: 4096,
        embeddingLength: 384,
        blockCount: 4,
        feedForwardLength: 1536,
        headCount: 6,
        headCountKv: 6,
      },
    });
    server = await startTestServer({ modelPath, contextSize: 4096, resumeWindowMs: 1000 });
    url = `${server.url}/api/extra/generate/stream`;
  });
  after(async () => server.close());
  const long = (genkey: string) => ({ prompt: 'Once', max_length: 3000, ban_eos_token: true, genkey });
  const find = (genkey: string) => server.context.scheduler.find(LOCAL_PRINCIPAL, genkey) as Generation;

  test('a genkey’d stream whose client leaves keeps running for the window, then stops and frees its slot', async () => {
    const stream = await openStream(url, long('WIN1'));
    await stream.until((text) => koboldEvents(text).length >= 2);
    await stream.cancel();
    const left = Date.now();
    const generation = find('WIN1');
    await sleep(400);
    assert.equal(generation.status, 'running', 'still running inside the window, for a resume');
    await ended(generation, 3000);
    const stoppedAfter = Date.now() - left;
    assert.ok(stoppedAfter >= 950, `stopped after ${stoppedAfter} ms, not before the window`);
    assert.ok(stoppedAfter < 2500, `stopped after ${stoppedAfter} ms: the window plus a batch`);
    assert.equal(generation.stopReason, 'abort');
    assert.ok(generation.log.text.length < 3000, 'it did not run to max_length');
    for (let i = 0; server.context.scheduler.busySlots > 0; i++) {
      assert.ok(i < 100, 'slot freed');
      await sleep(10);
    }
    const perf = (await postJson(`${server.url}/api/extra/generate/check`, { genkey: 'WIN1' })).body.results[0];
    assert.equal(perf.status, 'done', 'still checkable after it stopped (stream grace)');
  });

  test('a /check poll restarts the window; a sync request with a genkey is a reader too', async () => {
    const stream = await openStream(url, long('WIN2'));
    await stream.until((text) => koboldEvents(text).length >= 2);
    await stream.cancel();
    const generation = find('WIN2');
    for (let i = 0; i < 10; i++) {
      await sleep(250);
      await postJson(`${server.url}/api/extra/generate/check`, { genkey: 'WIN2' });
    }
    assert.equal(generation.status, 'running', '2.5 s of polls every 0.25 s kept it alive');
    const lastPoll = Date.now();
    await ended(generation, 3000);
    assert.ok(
      Date.now() - lastPoll >= 950,
      `it stopped ${Date.now() - lastPoll} ms after the last poll (${generation.stopReason}, ${generation.log.text.length} chars)`,
    );
    assert.equal(generation.stopReason, 'abort');

    const controller = new AbortController();
    const sync = fetch(`${server.url}/api/v1/generate`, {
      method: 'POST',
      body: JSON.stringify(long('WIN3')),
      signal: controller.signal,
    }).catch(() => undefined);
    for (let i = 0; !server.context.scheduler.find(LOCAL_PRINCIPAL, 'WIN3'); i++) {
      assert.ok(i < 200, 'the sync request started');
      await sleep(10);
    }
    const syncGeneration = find('WIN3');
    await sleep(1300);
    assert.equal(syncGeneration.status, 'running', 'a waiting sync request keeps it alive past the window');
    controller.abort();
    await sync;
    const waited = await ended(syncGeneration, 3000);
    assert.ok(waited >= 900, `stopped ${waited} ms after the sync client left`);
  });

  test('a resume inside the window gets the whole text, identical to an uncut run, no gap, no duplicate', async () => {
    const body = (genkey: string) => ({
      prompt: 'Once upon',
      max_length: 400,
      ban_eos_token: true,
      sampler_seed: 77,
      genkey,
    });
    const uncut = await openStream(url, body('UNCUT'));
    await uncut.done;
    const whole = tokens(uncut.text);
    assert.equal(koboldEvents(uncut.text).at(-1)?.data.finish_reason, 'length');

    const first = await openStream(url, body('CUT'));
    await first.until((text) => koboldEvents(text).length >= 3);
    await first.cancel();
    // Only complete events count: the cut may have split the last one.
    const complete = first.text.slice(0, first.text.lastIndexOf('\n\n') + 2);
    const seen = koboldEvents(complete);
    const lastId = seen.at(-1)?.id as string;
    await sleep(300);
    const generation = find('CUT');
    assert.equal(generation.readerCount, 0);
    const second = await openStream(url, body('CUT'), { 'Last-Event-ID': lastId });
    await second.done;
    const resumed = koboldEvents(second.text);
    assert.ok(
      resumed.every((e) => Number(e.id) > Number(lastId)),
      'nothing the first connection saw is sent again',
    );
    const ids = [...seen, ...resumed].map((e) => Number(e.id));
    assert.deepEqual(
      ids,
      [...ids].sort((a, b) => a - b),
    );
    assert.equal(new Set(ids).size, ids.length, 'no duplicate event');
    assert.equal(tokens(complete) + tokens(second.text), whole, 'the same text as the uncut run with the same seed');
    assert.equal(resumed.at(-1)?.data.finish_reason, 'length');
    assert.notEqual(generation.stopReason, 'abort', 'the resume attached within the window');
  });
});
