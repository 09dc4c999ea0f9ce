import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FleetLog } from '../../src/fleet/fleet-log.ts';
import { fleetKeys } from '../../src/fleet/fleet-part.ts';
import { aliveKey } from '../../src/fleet/membership.ts';
import { RedisLink } from '../../src/fleet/redis-link.ts';
import { Generation } from '../../src/scheduler/generation.ts';
import { waitUntil } from '../support/deadline.ts';
import { generationRequest } from '../support/generation-request.ts';
import { type RedisServer, startRedisServer } from '../support/redis-server.ts';

// Two requests with one client key that start on two nodes at the same moment (each node found the key free a
// moment before): only one of them may own the key's log in Redis, and the other stops with the 409 it would
// have got a moment later.

function keyed(key: string): Generation {
  const { prompt: _p, memory: _m, ...settled } = generationRequest('', { key });
  return new Generation(settled, [1, 2, 3], 5, 0, { principal: 'racer', protocol: 'kobold' });
}

describe('one client key started on two nodes at once', () => {
  let redis: RedisServer;
  let linkA: RedisLink;
  let linkB: RedisLink;
  let logA: FleetLog;
  let logB: FleetLog;
  /** A script that fails to run would let both generations run on: every write must succeed. */
  const writeErrors: unknown[] = [];
  before(async () => {
    redis = await startRedisServer();
    linkA = await RedisLink.connect({ url: redis.url });
    linkB = await RedisLink.connect({ url: redis.url });
    logA = await FleetLog.start(linkA, { nodeId: 'node-a', graceMs: 1000, onWriteError: (e) => writeErrors.push(e) });
    logB = await FleetLog.start(linkB, { nodeId: 'node-b', graceMs: 1000, onWriteError: (e) => writeErrors.push(e) });
    await linkA.commands.set(aliveKey('node-a'), '1');
    await linkA.commands.set(aliveKey('node-b'), '1');
  });
  after(async () => {
    await linkA?.close();
    await linkB?.close();
    await redis?.close();
  });

  test("runs once: the first write wins the key's log, the other generation ends with a 409 naming the winner", async () => {
    const onA = keyed('RACE');
    const onB = keyed('RACE');
    logA.publish(onA);
    logB.publish(onB);
    // Both first parts go out in the same turn, as two nodes' first writes would.
    onA.emit({ type: 'start', promptTokens: 3, seed: 1 });
    onB.emit({ type: 'start', promptTokens: 3, seed: 2 });
    await waitUntil(() => onB.signal.aborted || onA.signal.aborted, 5000, 'one of the two to be stopped');
    const [winner, loser, winnerNode] = onB.signal.aborted ? [onA, onB, 'node-a'] : [onB, onA, 'node-b'];
    assert.equal(winner.signal.aborted, false, 'the other runs on');
    assert.equal(loser.failure?.code, 'conflict');
    assert.match(loser.failure?.message ?? '', new RegExp(`key "RACE" is still running on fleet node ${winnerNode}`));
    const base = fleetKeys.base('racer', 'RACE');
    assert.equal(await linkA.commands.hGet(fleetKeys.record(base), 'id'), winner.id, "the record is the winner's");
    // The loser writes nothing more: the winner's later parts are the only ones after its first.
    loser.emit({ type: 'text-delta', text: 'lost', tokens: [9] });
    winner.emit({ type: 'text-delta', text: 'won', tokens: [8] });
    await waitUntil(
      async () => ((await linkA.commands.xLen(fleetKeys.log(base))) ?? 0) >= 2,
      5000,
      "the winner's text in Redis",
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    const entries = (await linkA.commands.xRange(fleetKeys.log(base), '-', '+')) ?? [];
    const parts = entries.map((entry) => JSON.parse(entry.message['p'] ?? '{}'));
    assert.deepEqual(
      parts.map((part) => part.text ?? part.seed),
      [winner === onA ? 1 : 2, 'won'],
    );
    assert.deepEqual(writeErrors, []);
  });

  test('a key whose holder ended (or whose node is gone) is free again for a new generation', async () => {
    const first = keyed('AGAIN');
    logA.publish(first);
    first.emit({ type: 'start', promptTokens: 3, seed: 1 });
    const base = fleetKeys.base('racer', 'AGAIN');
    await waitUntil(async () => (await linkA.commands.hGet(fleetKeys.record(base), 'id')) === first.id, 5000, 'A');
    // Node A dies without ending it: its proof of life goes, and B may take the key.
    await linkA.commands.del(aliveKey('node-a'));
    const second = keyed('AGAIN');
    logB.publish(second);
    second.emit({ type: 'start', promptTokens: 3, seed: 2 });
    await waitUntil(async () => (await linkA.commands.hGet(fleetKeys.record(base), 'id')) === second.id, 5000, 'B');
    assert.equal(second.signal.aborted, false);
    assert.deepEqual(writeErrors, []);
    await linkA.commands.set(aliveKey('node-a'), '1');
  });
});
