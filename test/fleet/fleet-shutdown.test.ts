import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../../src/main.ts';
import { waitUntil } from '../support/deadline.ts';
import { finished, keyedBody, oneSlotNode, tokensOf } from '../support/fleet-streams.ts';
import { koboldEvents } from '../support/from-address.ts';
import { type RedisServer, startRedisServer } from '../support/redis-server.ts';
import { KindlingProcess } from '../support/server-process.ts';
import { openStream } from '../support/sse-capture.ts';
import { slowTestModelPath } from '../support/test-model.ts';
import { banEndTokens, getJson, postJson, startTestServer } from '../support/test-server.ts';

/** Every SSE block's event name and data, `event: error` blocks included. */
const eventNames = (text: string) =>
  text
    .split('\n\n')
    .filter((block) => /^data: /m.test(block))
    .map((block) => /^event: (.*)$/m.exec(block)?.[1]);

describe('fleet shutdown: a SIGTERMed node finishes what it runs and hands back what waits', () => {
  let redis: RedisServer;
  let nodeB: RunningServer;
  let ban: Record<string, number>;
  before(async () => {
    redis = await startRedisServer();
    nodeB = await startTestServer(oneSlotNode(redis.url));
    ban = banEndTokens(nodeB);
  });
  after(async () => {
    await nodeB?.close();
    await redis?.close();
  });
  const body = (genkey: string, maxLength: number, seed: number, prompt: string) =>
    keyedBody(ban)(genkey, maxLength, seed, prompt);

  test('its running generation ends normally, its waiting keyed job runs on a peer, and it exits 0', async () => {
    // The reference: the text B alone makes, from a slot whose cache shares only the first token (as below).
    await finished(await openStream(`${nodeB.url}/api/extra/generate/stream`, body('SD-CLOBBER', 2, 1, 'Zebra')));
    const alone = tokensOf(
      (await finished(await openStream(`${nodeB.url}/api/extra/generate/stream`, body('SD-REF', 60, 5, 'Far away'))))
        .text,
    );

    const nodeA = await KindlingProcess.start({
      modelPath: slowTestModelPath(),
      args: ['--redis', redis.url, '--contextsize', '2048', '--parallel', '1', '--shutdown-grace', '20'],
    });
    try {
      const busyB = await openStream(
        `${nodeB.url}/api/extra/generate/stream`,
        body('SD-BUSY-B', 1900, 3, 'Once upon a time'),
      );
      await busyB.until((text) => koboldEvents(text).length >= 2);
      const running = await openStream(
        `${nodeA.url}/api/extra/generate/stream`,
        body('SD-RUN-A', 600, 4, 'Once upon a time'),
      );
      await running.until((text) => koboldEvents(text).length >= 2);
      // Both slots are busy: this one waits in the fleet's queue, fronted by A.
      const waiting = await openStream(`${nodeA.url}/api/extra/generate/stream`, body('SD-WAIT', 60, 5, 'Far away'));
      await waiting.until((text) => /^: queued 1$/m.test(text));
      const lastId = koboldEvents(waiting.text).at(-1)?.id;

      const stopping = nodeA.stop(30_000);
      await finished(running);
      assert.ok(!eventNames(running.text).includes('error'), running.text.slice(-300));
      assert.equal(koboldEvents(running.text).at(-1)?.data.finish_reason, 'length', 'ran to its length in the grace');
      const stopped = await stopping;
      assert.equal(stopped.code, 0, nodeA.logs());
      assert.equal(stopped.forced, false);
      // The waiting stream was cut, not ended: no error and no final event, so its client resumes elsewhere.
      await finished(waiting);
      assert.ok(!eventNames(waiting.text).includes('error'), waiting.text.slice(-300));
      assert.equal(tokensOf(waiting.text), '');

      // B frees its slot and takes the job A handed back; the client resumes it through B by key.
      await postJson(`${nodeB.url}/api/extra/abort`, { genkey: 'SD-BUSY-B' });
      await finished(busyB);
      const resumed = await openStream(
        `${nodeB.url}/api/extra/generate/stream`,
        body('SD-WAIT', 60, 5, 'Far away'),
        lastId ? { 'Last-Event-ID': lastId } : {},
      );
      await finished(resumed);
      assert.ok(!eventNames(resumed.text).includes('error'), resumed.text.slice(-300));
      assert.equal(tokensOf(resumed.text), alone, 'run once, on B, with the text B makes alone');
      await waitUntil(() => nodeB.context.scheduler.busySlots === 0, 3000, "B's slot to free");
      const checked = (await postJson(`${nodeB.url}/api/extra/generate/check`, { genkey: 'SD-WAIT' })).body;
      assert.equal(checked.results[0].status, 'done');
      const fleet = (await getJson(`${nodeB.url}/api/extra/fleet`)).body;
      assert.equal(fleet.nodes.length, 1, 'A left the fleet');
    } finally {
      await nodeA.kill();
    }
  });
});
