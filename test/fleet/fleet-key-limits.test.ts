import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../../src/main.ts';
import { sleep, waitUntil, withDeadline } from '../support/deadline.ts';
import { bearer, keyFile, testKey } from '../support/key-file.ts';
import { envelopeProblem } from '../support/protocol-envelope.ts';
import { type RedisServer, startRedisServer } from '../support/redis-server.ts';
import { openStream, type StreamCapture } from '../support/sse-capture.ts';
import { LONG_RUN_MODEL_HPARAMS, testModelPath } from '../support/test-model.ts';
import { banEndTokens, postJson, startTestServer } from '../support/test-server.ts';

// A key's max_concurrent and max_queued hold across the fleet, not per node: two nodes with free slots each,
// one key file, and the key's requests sent to both.

describe("a key's max_concurrent and max_queued count its requests on every node of a fleet", () => {
  let redis: RedisServer;
  let nodeA: RunningServer;
  let nodeB: RunningServer;
  let ban: Record<string, number>;
  before(async () => {
    redis = await startRedisServer();
    const keys = keyFile([
      { name: 'capped', key: testKey('capped'), max_concurrent: 1, max_queued: 1 },
      { name: 'other', key: testKey('other') },
    ]);
    // Two slots a node, so that a request of the capped key finds a free slot wherever it goes; a model slow
    // enough that its first generation is still running while the test looks (the test stops it itself).
    const config = {
      redisUrl: redis.url,
      apiKeysPath: keys.path,
      modelPath: testModelPath('F16', { hparams: LONG_RUN_MODEL_HPARAMS }),
      contextSize: 2048,
      parallel: 2,
    };
    nodeA = await startTestServer(config);
    nodeB = await startTestServer(config);
    ban = banEndTokens(nodeA);
  });
  after(async () => {
    await Promise.allSettled([nodeA?.close(), nodeB?.close()]);
    await redis?.close();
  });
  const streamOn = (node: RunningServer, genkey: string, key: string, maxLength: number) =>
    openStream(
      `${node.url}/api/extra/generate/stream`,
      { prompt: genkey, max_length: maxLength, genkey, logit_bias: ban },
      bearer(key),
    );
  const firstToken = (stream: StreamCapture) => stream.until((text) => /^data: /m.test(text), 30_000);
  const status = async (node: RunningServer, genkey: string, key: string) =>
    (await postJson(`${node.url}/api/extra/generate/check`, { genkey }, bearer(key))).body.results[0].status;

  test('a second request of a key at max_concurrent 1 waits on another node with free slots; a third is a 429', async () => {
    const first = await streamOn(nodeA, 'L-ONE', 'capped', 1000);
    await firstToken(first);
    const second = await streamOn(nodeB, 'L-TWO', 'capped', 8);
    const secondStartedAt = firstToken(second).then(() => Date.now());
    await second.until((text) => /^: queued 1\b/m.test(text), 10_000);
    // Both nodes have a free slot; none may start it while the key's first request runs on A.
    await sleep(600);
    assert.equal(await status(nodeA, 'L-ONE', 'capped'), 'running', 'the first is still running (the check holds)');
    assert.equal(await status(nodeB, 'L-TWO', 'capped'), 'queued');
    assert.equal(nodeA.context.scheduler.busySlots + nodeB.context.scheduler.busySlots, 1);

    // Another key is not held back: it starts at once on B.
    const other = await streamOn(nodeB, 'L-OTHER', 'other', 8);
    await withDeadline(firstToken(other), 30_000, "the other key's request to start");

    // The key's one waiting place (max_queued 1) is taken, though it waits on B: a third request to A is refused.
    const refused = await postJson(
      `${nodeA.url}/api/v1/generate`,
      { prompt: 'L-THREE', max_length: 4, genkey: 'L-THREE' },
      bearer('capped'),
    );
    assert.equal(refused.status, 429, JSON.stringify(refused.body));
    assert.equal(envelopeProblem('kobold', refused.body), undefined);
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    assert.match(refused.body.detail.msg, /waiting in the fleet \(its max_queued\)/);

    // Once the first ends, the second starts (on whichever node takes it) and runs to its end.
    const abortedAt = Date.now();
    const stopped = await postJson(`${nodeA.url}/api/extra/abort`, { genkey: 'L-ONE' }, bearer('capped'));
    assert.equal(stopped.status, 200);
    await withDeadline(first.done, 30_000, 'the first to end');
    await withDeadline(second.done, 30_000, 'the second to run and end');
    assert.ok((await secondStartedAt) >= abortedAt, 'the second started only once the first was stopped');
    assert.equal(await status(nodeB, 'L-TWO', 'capped'), 'done');
    await waitUntil(
      () => nodeA.context.scheduler.busySlots + nodeB.context.scheduler.busySlots === 0,
      10_000,
      'the slots to empty',
    );
  });
});
