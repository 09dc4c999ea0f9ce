import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import type { KindlingError } from '../../src/core/kindling-error.ts';
import type { ModelInfo } from '../../src/core/model-info.ts';
import { FleetLog } from '../../src/fleet/fleet-log.ts';
import { fleetKeys } from '../../src/fleet/fleet-part.ts';
import { FleetQueue, PREFER_MS } from '../../src/fleet/fleet-queue.ts';
import { aliveKey } from '../../src/fleet/membership.ts';
import { RedisLink } from '../../src/fleet/redis-link.ts';
import { DEFAULT_QOS, type QueueQos } from '../../src/scheduler/fair-queue.ts';
import { Generation } from '../../src/scheduler/generation.ts';
import { sleep } from '../support/deadline.ts';
import { generationRequest } from '../support/generation-request.ts';
import { type RedisServer, startRedisServer } from '../support/redis-server.ts';

const MODEL = { name: 'order-test', vocabularySize: 1000 } as ModelInfo;
let counter = 0;

/** A generation as the scheduler would queue it: its own key, principal, class and prompt tokens. */
function job(principal: string, prompt: readonly number[] = [1, 2, 3], qos: Partial<QueueQos> = {}, keyed = true) {
  const key = `job-${++counter}`;
  const request = generationRequest('', keyed ? { key } : {});
  const { prompt: _p, memory: _m, ...settled } = request;
  return new Generation(settled, prompt, 5, 0, {
    principal,
    protocol: 'kobold',
    qos: { ...DEFAULT_QOS, ...qos },
  });
}
/** Polls `check` (a refresh or a published release may take a few hundred ms) until it holds. */
async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}
const keyOf = (generation: Generation | undefined) => generation?.request.key ?? generation?.id;

describe("the fleet queue's order, in Redis: fair across principals, interactive first, prefix-aware, bounded", () => {
  let redis: RedisServer;
  let link: RedisLink;
  let queue: FleetQueue;
  let peer: FleetQueue;
  let peerLink: RedisLink;
  const ended = () => {};
  before(async () => {
    redis = await startRedisServer();
    link = await RedisLink.connect({ url: redis.url });
    const log = await FleetLog.start(link, { nodeId: 'node-front', graceMs: 1000 });
    queue = await FleetQueue.start(link, log, { nodeId: 'node-front', model: MODEL, batchAgingMs: 300 });
    // A second node on its own link: a job it takes from the first one is rebuilt from Redis alone.
    peerLink = await RedisLink.connect({ url: redis.url });
    const peerLog = await FleetLog.start(peerLink, { nodeId: 'node-peer', graceMs: 1000 });
    peer = await FleetQueue.start(peerLink, peerLog, { nodeId: 'node-peer', model: MODEL });
  });
  beforeEach(async () => {
    await link.commands.flushAll();
    await link.commands.set(aliveKey('node-front'), '1');
    await link.commands.set(aliveKey('node-peer'), '1');
  });
  after(async () => {
    await queue?.close();
    await peer?.close();
    await peerLink?.close();
    await link?.close();
    await redis?.close();
  });
  const takeAll = async (cached: number[][] = []) => {
    const order: Array<string | undefined> = [];
    for (let taken = await queue.take(cached); taken; taken = await queue.take(cached)) order.push(keyOf(taken));
    return order;
  };

  test("a principal's 4 waiting requests delay another principal's single one by one turn, and places say so", async () => {
    const alice = [job('alice'), job('alice'), job('alice'), job('alice')];
    const bob = job('bob');
    for (const generation of [...alice, bob]) await queue.push(generation, 100, ended);
    assert.deepEqual(
      [...alice, bob].map((g) => g.log.last?.type === 'queued' && g.log.last.position),
      [1, 2, 3, 4, 2],
      "bob's request goes in second place, behind alice's first",
    );
    assert.equal(queue.length, 5);
    assert.deepEqual(await takeAll(), [alice[0], bob, alice[1], alice[2], alice[3]].map(keyOf));
  });

  test('interactive goes before batch, and a batch request that waited past the aging limit goes before later work', async () => {
    const batch = job('carol', [1], { priority: 'batch' });
    const interactive = job('dave');
    await queue.push(batch, 100, ended);
    await queue.push(interactive, 100, ended);
    assert.deepEqual(await takeAll(), [interactive, batch].map(keyOf));
    const aged = job('kate', [1], { priority: 'batch' });
    await queue.push(aged, 100, ended);
    await sleep(350);
    const late = job('erin');
    await queue.push(late, 100, ended);
    assert.deepEqual(await takeAll(), [aged, late].map(keyOf), 'batch work is delayed, never starved');
  });

  test('a free slot that holds the start of a later prompt takes that job first, for at most PREFER_MS', async () => {
    const story = Array.from({ length: 300 }, (_, i) => 100 + (i % 50));
    const other = job('frank', [9, 8, 7, 6]);
    const sequel = job('gina', [...story, 1, 2, 3]);
    await queue.push(other, 100, ended);
    await queue.push(sequel, 100, ended);
    assert.deepEqual(await takeAll([story]), [sequel, other].map(keyOf));
    const head = job('frank', [9, 8, 7, 6]);
    const later = job('gina', [...story, 4]);
    await queue.push(head, 100, ended);
    await queue.push(later, 100, ended);
    await sleep(PREFER_MS + 50);
    assert.deepEqual(await takeAll([story]), [head, later].map(keyOf), 'a head that waited its bound goes first');
  });

  test('--queue bounds the waiting jobs with a 503 that says to retry; a withdrawn job is never taken', async () => {
    const first = job('hank');
    const second = job('hank');
    await queue.push(first, 2, ended);
    await queue.push(second, 2, ended);
    await assert.rejects(queue.push(job('hank'), 2, ended), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'queue_full');
      assert.match(error.message, /2 requests are waiting/);
      return true;
    });
    assert.equal(await queue.withdraw(first), true);
    assert.equal(await queue.withdraw(first), false);
    assert.equal(queue.holds(second), true);
    assert.deepEqual(await takeAll(), [keyOf(second)]);
    assert.equal(queue.holds(second), false);
  });

  test("a peer rebuilds a job from Redis; a job whose front died is dropped with an error only when it's anonymous", async () => {
    const keyed = job('ivan', [5, 6, 7]);
    await queue.push(keyed, 100, ended);
    const taken = await peer.take([]);
    assert.ok(taken);
    assert.notEqual(taken, keyed);
    assert.equal(taken.id, keyed.id);
    assert.equal(taken.key, keyed.key);
    assert.deepEqual(taken.promptTokens, [5, 6, 7]);
    assert.deepEqual(taken.log.partsAfter(0), keyed.log.partsAfter(0), 'the same first parts, with the same ids');
    const anonymous = job('ivan', [1], {}, false);
    const kept = job('ivan', [2]);
    await queue.push(anonymous, 100, ended);
    await queue.push(kept, 100, ended);
    await link.commands.del(aliveKey('node-front'));
    const next = await peer.take([]);
    assert.equal(next?.id, kept.id, 'a keyed job can still be resumed from another node, so it runs');
    const base = fleetKeys.base('ivan', anonymous.key);
    const entries = await link.commands.xRange(fleetKeys.log(base), '-', '+');
    const lastPart = JSON.parse(entries?.at(-1)?.message['p'] ?? '{}');
    assert.equal(lastPart.type, 'error');
    assert.match(lastPart.error.message, /node-front.*stopped while it waited/);
  });

  test("max_concurrent counts a principal's slots on every node: a peer passes over its job until one ends", async () => {
    const capped = { maxConcurrent: 1 };
    const first = job('dora', [1], capped);
    const second = job('dora', [2], capped);
    const other = job('emil', [3]);
    for (const generation of [first, second, other]) await queue.push(generation, 100, ended);
    assert.equal(keyOf(await queue.take([])), keyOf(first), "the front runs dora's first request");
    assert.equal(keyOf(await peer.take([])), keyOf(other), "the peer passes over dora's second: she holds a slot");
    assert.equal(await peer.take([]), undefined, 'nothing else may start while her first one runs');
    assert.equal(await peer.claim('dora', 1), false, 'nor may a new request of hers start at once anywhere');
    queue.release('dora');
    await waitFor(async () => keyOf(await peer.take([])) === keyOf(second), "dora's second request on the peer");
    assert.equal(await queue.claim('dora', 1), false, 'her second one now holds her one slot');
    peer.release('dora');
    await waitFor(() => queue.claim('dora', 1), 'a claim once she holds none');
    assert.equal(await peer.claim('ezra', 1), true, 'another principal is not held back by her count');
  });

  test("max_queued counts a principal's waiting requests on every node, with a 429 that says so", async () => {
    const capped = { maxQueued: 2 };
    await queue.push(job('fay', [1], capped), 100, ended);
    await peer.push(job('fay', [2], capped), 100, ended);
    await assert.rejects(queue.push(job('fay', [3], capped), 100, ended), (error: KindlingError) => {
      assert.equal(error.code, 'rate_limited');
      assert.match(error.message, /already has 2 requests waiting in the fleet \(its max_queued\)/);
      return true;
    });
    await queue.push(job('gus', [4], capped), 100, ended);
    assert.ok(await peer.take([]));
    await queue.push(job('fay', [5], capped), 100, ended);
  });

  test("each node's count of what it runs is rewritten at its refresh: a lost release holds nothing for long", async () => {
    const capped = { maxConcurrent: 1 };
    await queue.push(job('hana', [1], capped), 100, ended);
    assert.ok(await queue.take([]));
    // A release whose answer was lost, as Redis saw it: the front's count in Redis says she still runs two.
    await link.commands.hSet('kindling:run:node-front', 'hana', '2');
    queue.release('hana');
    await waitFor(async () => (await link.commands.hGet('kindling:run:node-front', 'hana')) === null, 'the refresh');
    assert.equal(await peer.claim('hana', 1), true);
  });

  test('a taken job a node cannot read (another version wrote it) ends with an error, not taken until it expires', async () => {
    const unreadable = job('iris', [1]);
    await queue.push(unreadable, 100, ended);
    const base = fleetKeys.base('iris', unreadable.key);
    await link.commands.hSet(`kindling:job:${base}`, 'data', '{"written by": "another version"');
    assert.equal(await peer.take([]), undefined);
    const entries = await link.commands.xRange(fleetKeys.log(base), '-', '+');
    const lastPart = JSON.parse(entries?.at(-1)?.message['p'] ?? '{}');
    assert.equal(lastPart.type, 'error');
    assert.match(lastPart.error.message, /node-peer took this request .* could not read it .*different versions/);
    assert.equal(await link.commands.zScore('kindling:taken-jobs', base), null, 'nobody holds it as taken');
    assert.equal(await link.commands.hGet(fleetKeys.record(base), 'status'), 'done');
  });

  test('a client key queued on one node is a 409 naming that node when another node queues it too', async () => {
    const first = job('jill', [1]);
    await queue.push(first, 100, ended);
    const { prompt: _p, memory: _m, ...settled } = generationRequest('', { key: first.key });
    const again = new Generation(settled, [2], 5, 0, { principal: 'jill', protocol: 'kobold', qos: DEFAULT_QOS });
    await assert.rejects(peer.push(again, 100, ended), (error: KindlingError) => {
      assert.equal(error.code, 'conflict');
      assert.match(error.message, new RegExp(`key "${first.key}" is still running on fleet node node-front`));
      return true;
    });
    assert.equal(keyOf(await peer.take([])), keyOf(first), 'the first one still waits, untouched');
  });
});
