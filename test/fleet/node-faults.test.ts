import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createClient } from '@redis/client';
import { aliveKey, membershipOf } from '../../src/fleet/membership.ts';
import type { RunningServer } from '../../src/main.ts';
import type { Generation } from '../../src/scheduler/generation.ts';
import { waitUntil, withDeadline } from '../support/deadline.ts';
import { koboldEvents } from '../support/from-address.ts';
import { type RedisServer, startRedisServer } from '../support/redis-server.ts';
import { KindlingProcess } from '../support/server-process.ts';
import { openStream } from '../support/sse-capture.ts';
import { slowTestModelPath } from '../support/test-model.ts';
import { banEndTokens, getJson, LOCAL_PRINCIPAL, postJson, startTestServer } from '../support/test-server.ts';

/** The complete events of a captured stream (a block still arriving at the end is left out). */
const completeEvents = (text: string) => koboldEvents(text.slice(0, text.lastIndexOf('\n\n') + 2));
/** Every SSE block's event name and data, `event: error` blocks included. */
const sseBlocks = (text: string) =>
  text
    .split('\n\n')
    .filter((block) => /^data: /m.test(block))
    .map((block) => ({ event: /^event: (.*)$/m.exec(block)?.[1], data: /^data: (.*)$/m.exec(block)?.[1] ?? '' }));

describe('fleet faults: a node that dies or shuts down while it generates', () => {
  let redis: RedisServer;
  let nodeB: RunningServer;
  let ban: Record<string, number>;
  const config = () => ({ redisUrl: redis.url, modelPath: slowTestModelPath(), contextSize: 2048 });
  const body = (genkey: string, maxLength: number) => ({
    prompt: 'Once upon a time',
    max_length: maxLength,
    sampler_seed: 3,
    genkey,
    logit_bias: ban,
  });
  before(async () => {
    redis = await startRedisServer();
    nodeB = await startTestServer(config());
    // The same model file on every node: the end tokens B bans are the owner's too.
    ban = banEndTokens(nodeB);
  });
  after(async () => {
    await nodeB?.close();
    await redis?.close();
  });

  test("a SIGKILLed owner's readers on another node get an error naming it within the heartbeat TTL", async () => {
    const owner = await KindlingProcess.start({
      modelPath: slowTestModelPath(),
      args: ['--redis', redis.url, '--contextsize', '2048'],
    });
    try {
      const ownerId = (await getJson(`${owner.url}/api/extra/fleet`)).body.node as string;
      assert.match(ownerId, /^node-/);
      const first = await openStream(`${owner.url}/api/extra/generate/stream`, body('LOSTNODE', 1900));
      await first.until((text) => completeEvents(text).length >= 3);
      const lastId = completeEvents(first.text).at(-1)?.id as string;
      const follower = await openStream(`${nodeB.url}/api/extra/generate/stream`, body('LOSTNODE', 1900), {
        'Last-Event-ID': lastId,
      });
      await follower.until((text) => completeEvents(text).length >= 1);
      const running = await postJson(`${nodeB.url}/api/extra/generate/check`, { genkey: 'LOSTNODE' });
      assert.equal(running.body.results[0].status, 'running', 'the owner still generates before the kill');

      owner.child.kill('SIGKILL');
      const killedAt = (await owner.exited).at;
      await withDeadline(follower.done, 8000, "B's follower to end after its owner died");
      const took = Date.now() - killedAt;
      assert.ok(took < 5000, `the follower ended ${took} ms after the kill`);
      const blocks = sseBlocks(follower.text);
      const error = blocks.find((block) => block.event === 'error');
      assert.ok(error, `an error event: ${follower.text.slice(-400)}`);
      assert.match(error.data, new RegExp(`Fleet node ${ownerId}\\b.*stopped`));
      assert.equal(JSON.parse(blocks.at(-1)?.data ?? '{}').finish_reason, 'error');

      // /check says the generation ended in error (status "done", finish_reason "error"), not "running".
      const checked = (await postJson(`${nodeB.url}/api/extra/generate/check`, { genkey: 'LOSTNODE' })).body.results[0];
      assert.equal(checked.status, 'done');
      assert.equal(checked.finish_reason, 'error');
      assert.ok(checked.text.length > 0, 'the text generated before the death is kept');
    } finally {
      await owner.kill();
    }
  });

  test('a SIGTERMed owner drains: its reader on another node sees the true finish, and it beats until then', async () => {
    const nodeA = await startTestServer({ ...config(), shutdownGraceMs: 20_000 });
    const idA = membershipOf(nodeA.context.redis)?.id ?? '';
    const probe = createClient({ url: redis.url });
    probe.on('error', () => {});
    await probe.connect();
    try {
      const first = await openStream(`${nodeA.url}/api/extra/generate/stream`, body('DRAINED', 1200));
      await first.until((text) => completeEvents(text).length >= 3);
      const seen = completeEvents(first.text);
      const lastId = seen.at(-1)?.id as string;
      const follower = await openStream(`${nodeB.url}/api/extra/generate/stream`, body('DRAINED', 1200), {
        'Last-Event-ID': lastId,
      });
      await follower.until((text) => completeEvents(text).length >= 1);
      const generation = nodeA.context.scheduler.find(LOCAL_PRINCIPAL, 'DRAINED') as Generation;
      assert.ok(!generation.log.ended, 'A still generates when it is told to stop');

      const closing = nodeA.close();
      await waitUntil(
        async () =>
          !(await getJson(`${nodeB.url}/api/extra/fleet`)).body.nodes.some((n: { id: string }) => n.id === idA),
        3000,
        'A to leave the listing as its shutdown starts',
      );
      if (!generation.log.ended) assert.equal(await probe.exists(aliveKey(idA)), 1, 'a draining node still beats');
      await closing;
      assert.equal(generation.stopReason, 'max-tokens', 'the drain let the generation finish');
      assert.equal(await probe.exists(aliveKey(idA)), 0, 'a node that closed stops beating at once');

      await withDeadline(follower.done, 10_000, "B's follower to end");
      const blocks = sseBlocks(follower.text);
      assert.ok(!blocks.some((block) => block.event === 'error'), follower.text.slice(-400));
      const events = koboldEvents(follower.text);
      assert.equal(events.at(-1)?.data.finish_reason, 'length');
      const resumedText = events.map((event) => event.data.token ?? '').join('');
      const before = seen.map((event) => event.data.token ?? '').join('');
      assert.equal(before + resumedText, generation.log.text, 'B streamed the rest, to the end, of what A generated');
    } finally {
      await probe.close();
      await nodeA.close();
    }
  });
});
