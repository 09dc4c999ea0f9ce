import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createClient } from '@redis/client';
import { PREFER_MS } from '../../src/fleet/fleet-queue.ts';
import { STARTED, TAKE } from '../../src/fleet/fleet-queue-scripts.ts';
import type { RunningServer } from '../../src/main.ts';
import { BATCH_AGING_MS } from '../../src/scheduler/fair-queue.ts';
import { waitUntil } from '../support/deadline.ts';
import { finished, keyedBody, oneSlotNode, streamTo, tokensOf } from '../support/fleet-streams.ts';
import { koboldEvents } from '../support/from-address.ts';
import { type RedisServer, startRedisServer } from '../support/redis-server.ts';
import { banEndTokens, postJson, startTestServer } from '../support/test-server.ts';

/**
 * A node that takes a job and dies before its first write: played here by a client that runs the same TAKE
 * script a node runs, under a node id whose heartbeat key then expires (what a SIGKILL between the take and the
 * start leaves in Redis). The real node must put the job back and run it, once, with the text it makes alone.
 */
describe('fleet queue: a job whose taker died before starting it goes back and runs elsewhere, exactly once', () => {
  let redis: RedisServer;
  let node: RunningServer;
  let ban: Record<string, number>;
  let probe: ReturnType<typeof createClient>;
  before(async () => {
    redis = await startRedisServer();
    node = await startTestServer(oneSlotNode(redis.url));
    ban = banEndTokens(node);
    probe = createClient({ url: redis.url });
    await probe.connect();
  });
  after(async () => {
    await probe?.close();
    await node?.close();
    await redis?.close();
  });
  const streamOn = (genkey: string, maxLength: number, seed: number, prompt: string) =>
    streamTo(node, keyedBody(ban)(genkey, maxLength, seed, prompt));

  test('the ghost taker loses it when its heartbeat expires; the live node runs it and the ghost cannot start it', async () => {
    // The reference, from a slot whose cache shares only the first token with the prompt (as it will below).
    await finished(await streamOn('RC-CLOBBER', 2, 1, 'Zebra crossing'));
    const alone = tokensOf((await finished(await streamOn('RC-REF', 40, 9, 'Far away'))).text);
    assert.ok(alone.length > 0);

    const busy = await streamOn('RC-BUSY', 1500, 3, 'Once upon a time');
    await busy.until((text) => koboldEvents(text).length >= 2);
    const job = await streamOn('RC-JOB', 40, 9, 'Far away');
    await job.until((text) => /^: queued 1$/m.test(text));

    const [queue] = (await probe.keys('kindling:q:*:i')).map((key) => key.slice(0, -2));
    assert.ok(queue, 'the model has a fleet queue');
    await probe.set('kindling:alive:ghost', '1', { PX: 1500 });
    const taken = (await probe.eval(TAKE, {
      arguments: [queue, 'ghost', String(Date.now()), String(BATCH_AGING_MS), String(PREFER_MS), '4', ','],
    })) as string[] | null;
    assert.ok(taken, 'the ghost took the waiting job');
    const base = taken[0] as string;
    assert.match(base, /RC-JOB/);
    assert.equal(await probe.hGet(`kindling:gen:${base}:rec`, 'node'), 'ghost');

    // The node's slot frees; the job is the ghost's until its heartbeat key expires, then back in line.
    await postJson(`${node.url}/api/extra/abort`, { genkey: 'RC-BUSY' });
    await finished(busy);
    await finished(job);
    assert.equal(tokensOf(job.text), alone, 'the text the node makes alone, with nothing lost or repeated');
    assert.doesNotMatch(job.text, /event: error/);
    const starts = ((await probe.xRange(`kindling:gen:${base}:log`, '-', '+')) ?? []).filter(
      ({ message }) => JSON.parse(message['p'] as string).type === 'start',
    );
    assert.equal(starts.length, 1, 'it started once');
    assert.notEqual(await probe.hGet(`kindling:gen:${base}:rec`, 'node'), 'ghost');

    // The ghost comes back and tries its first write: refused, the job is no longer its.
    const late = await probe.eval(STARTED, {
      arguments: ['', base, 'ghost', '60000', 'running', 'kg-x', '0-99', '{"type":"start"}'],
    });
    assert.equal(Number(late), 0);
    assert.equal(((await probe.xRange(`kindling:gen:${base}:log`, '0-99', '0-99')) ?? []).length, 0);
    assert.equal(await probe.zCard('kindling:taken-jobs'), 0, 'no job is left marked as taken');
  });

  test('a live taker keeps its job, and its first write starts it', async () => {
    const busy = await streamOn('RC-BUSY2', 1500, 3, 'Once upon a time');
    await busy.until((text) => koboldEvents(text).length >= 2);
    const job = await streamOn('RC-JOB2', 40, 9, 'Far away');
    await job.until((text) => /^: queued 1$/m.test(text));
    const [queue] = (await probe.keys('kindling:q:*:i')).map((key) => key.slice(0, -2));
    await probe.set('kindling:alive:peer', '1', { PX: 10_000 });
    const taken = (await probe.eval(TAKE, {
      arguments: [queue as string, 'peer', String(Date.now()), String(BATCH_AGING_MS), String(PREFER_MS), '4', ','],
    })) as string[];
    const base = taken[0] as string;
    // A refresh or two of the front node: the job stays taken (its taker beats), not back in line.
    await new Promise((resolve) => setTimeout(resolve, 1200));
    assert.equal(await probe.hGet(`kindling:job:${base}`, 'taker'), 'peer');
    assert.equal(await probe.zCard(`${queue}:i`), 0);
    const started = await probe.eval(STARTED, {
      arguments: ['', base, 'peer', '60000', 'running', 'kg-y', '0-2', '{"type":"start","promptTokens":3,"seed":9}'],
    });
    assert.equal(Number(started), 1);
    assert.equal(await probe.exists(`kindling:job:${base}`), 0);
    assert.equal(await probe.zCard('kindling:taken-jobs'), 0);
    // The front follows the peer's log: the peer's end is its client's end.
    await probe.xAdd(`kindling:gen:${base}:log`, '0-3', {
      p: JSON.stringify({ type: 'text-delta', text: ' peer', tokens: [5] }),
    });
    await waitUntil(() => tokensOf(job.text) === ' peer', 5000, "the peer's text to reach the front's client");
    const usage = { promptTokens: 3, cachedPromptTokens: 0, completionTokens: 1, truncatedPromptTokens: 0 };
    await probe.xAdd(`kindling:gen:${base}:log`, '0-4', {
      p: JSON.stringify({
        type: 'finish',
        reason: 'max-tokens',
        usage,
        timings: { queuedMs: 0, promptMs: 0, generationMs: 0 },
      }),
    });
    await finished(job);
    assert.equal(tokensOf(job.text), ' peer');
    await postJson(`${node.url}/api/extra/abort`, { genkey: 'RC-BUSY2' });
    await finished(busy);
    await probe.del('kindling:alive:peer');
  });
});
