import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RedisLink } from '../../src/fleet/redis-link.ts';
import type { RunningServer } from '../../src/main.ts';
import type { Generation } from '../../src/scheduler/generation.ts';
import { requestFrom } from '../support/from-address.ts';
import { type RedisServer, startRedisServer } from '../support/redis-server.ts';
import { slowTestModelPath } from '../support/test-model.ts';
import { banEndTokens, LOCAL_PRINCIPAL, startTestServer } from '../support/test-server.ts';

/** Calls of each command since the last CONFIG RESETSTAT, from INFO commandstats. */
async function commandCalls(link: RedisLink): Promise<Record<string, number>> {
  const info = await link.run((redis) => redis.info('commandstats'));
  return Object.fromEntries([...info.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)].map((m) => [m[1], Number(m[2])]));
}

describe("a fleet node's writes to the shared log", () => {
  let redis: RedisServer;
  let node: RunningServer;
  let link: RedisLink;
  before(async () => {
    redis = await startRedisServer();
    node = await startTestServer({ redisUrl: redis.url, modelPath: slowTestModelPath(), contextSize: 2048 });
    link = await RedisLink.connect({ url: redis.url });
  });
  after(async () => {
    await link?.close();
    await node?.close();
    await redis?.close();
  });

  test('are batched: one MULTI carries the parts of every generation a scheduler batch advanced', async () => {
    await link.run((r) => r.configResetStat());
    const ban = banEndTokens(node);
    const body = (genkey: string) => ({
      prompt: 'The fleet',
      max_length: 300,
      sampler_seed: 3,
      genkey,
      logit_bias: ban,
    });
    const url = `${node.url}/api/extra/generate/stream`;
    // Two at once on two slots: each decode step yields a token for both, so their parts share a write.
    const [one, two] = await Promise.all([
      requestFrom('127.0.0.1', url, { body: body('BATCH1'), timeoutMs: 30_000 }),
      requestFrom('127.0.0.1', url, { body: body('BATCH2'), timeoutMs: 30_000 }),
    ]);
    assert.equal(one.status, 200);
    assert.equal(two.status, 200);
    const logs = ['BATCH1', 'BATCH2'].map(
      (key) => (node.context.scheduler.find(LOCAL_PRINCIPAL, key) as Generation).log,
    );
    const parts = logs.reduce((sum, log) => sum + log.lastId, 0);
    const calls = await commandCalls(link);
    assert.equal(calls['xadd'], parts, 'every part reached Redis once');
    // One write per event-loop turn, not per part: the two runners' tokens of one decode step mostly land in the
    // same turn (about 0.65 writes a part here; one generation alone is about 1).
    const writes = calls['exec'] ?? 0;
    assert.ok(writes > 0 && writes <= parts * 0.8, `${writes} writes for ${parts} parts`);

    const stored = await link.run((r) =>
      r.xRange(`kindling:gen:${encodeURIComponent(LOCAL_PRINCIPAL)}:BATCH1:log`, '-', '+'),
    );
    assert.equal(stored?.length, logs[0]?.lastId);
    assert.equal(stored?.at(-1)?.id, `0-${logs[0]?.lastId}`, 'entry ids are the event ids');
    const ttl = await link.run((r) => r.pTTL(`kindling:gen:${encodeURIComponent(LOCAL_PRINCIPAL)}:BATCH1:rec`));
    const grace = node.context.config.streamGraceMs;
    assert.ok(ttl > 0 && ttl <= grace, `the record expires --stream-grace (${grace} ms) after the end: ${ttl}`);
  });
});
