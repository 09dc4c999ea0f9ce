import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../../src/main.ts';
import { waitUntil } from '../support/deadline.ts';
import { finished, keyedBody, oneSlotNode, streamTo, tokensOf } from '../support/fleet-streams.ts';
import { koboldEvents } from '../support/from-address.ts';
import { type RedisServer, startRedisServer } from '../support/redis-server.ts';
import { banEndTokens, postJson, startTestServer } from '../support/test-server.ts';

const queuedPlaces = (text: string) => [...text.matchAll(/^: queued (\d+)$/gm)].map((m) => Number(m[1]));

describe('one fleet-wide queue: a free slot on any node takes the next waiting request', () => {
  let redis: RedisServer;
  let nodeA: RunningServer;
  let nodeB: RunningServer;
  let ban: Record<string, number>;
  before(async () => {
    redis = await startRedisServer();
    // One slot a node, and the slower model (~2 ms a token), so generations overlap long enough to see where
    // each runs.
    const config = oneSlotNode(redis.url);
    nodeA = await startTestServer({ ...config, maxQueue: 3 });
    nodeB = await startTestServer({ ...config, maxQueue: 3 });
    ban = banEndTokens(nodeA);
  });
  after(async () => {
    await Promise.allSettled([nodeA?.close(), nodeB?.close()]);
    await redis?.close();
  });
  const streamOn = (node: RunningServer, genkey: string, maxLength: number, seed = 7, prompt = 'Once upon a time') =>
    streamTo(node, keyedBody(ban)(genkey, maxLength, seed, prompt));

  test('two long generations sent to one node run at once, one on each node, with the text a lone node makes', async () => {
    // The text node B alone makes for each seed, as the reference.
    // Each run starts from a slot that shares only the first token with its prompt, as the others do: a cached
    // prompt is evaluated in other batch shapes, and its floats (so a random model's text) may differ.
    const clobber = () => streamOn(nodeB, `Q-CLOBBER-${Math.random()}`, 2, 1, 'Zebra crossing').then(finished);
    const alone7 = tokensOf((await finished(await streamOn(nodeA, 'Q-REF7', 300, 7))).text);
    await streamOn(nodeA, `Q-CLOBBER-A`, 2, 1, 'Zebra crossing').then(finished);
    const alone8 = tokensOf((await finished(await streamOn(nodeB, 'Q-REF8', 300, 8))).text);
    await clobber();
    const first = await streamOn(nodeA, 'Q-ONE', 300, 7);
    await first.until((text) => koboldEvents(text).length >= 2);
    const second = await streamOn(nodeA, 'Q-TWO', 300, 8);
    // A's only slot is busy: the second waits in the fleet's queue and B, which is idle, takes it.
    await waitUntil(() => nodeB.context.scheduler.busySlots === 1, 5000, 'B to take the second request');
    assert.equal(nodeA.context.scheduler.busySlots, 1);
    assert.ok(nodeB.context.scheduler.find('127.0.0.1', 'Q-TWO') ?? true);
    const [one, two] = await Promise.all([finished(first), finished(second)]);
    assert.equal(tokensOf(one.text), alone7);
    assert.equal(tokensOf(two.text), alone8, 'the text B made for a request A took in is the text B makes alone');
    assert.deepEqual(queuedPlaces(two.text), [1], 'it waited first in line');
    // Event ids run on without a gap across the hand-over: 1 was the queued part A logged.
    const ids = koboldEvents(two.text).map((e) => e.id);
    assert.ok(ids.length >= 2, two.text);
    assert.deepEqual(
      ids.map(Number),
      ids.map(Number).sort((a, b) => a - b),
    );
    assert.equal(new Set(ids).size, ids.length);
  });

  test('places are fleet-wide, /check answers them on any node, and --queue bounds the whole fleet', async () => {
    const busyA = await streamOn(nodeA, 'Q-BUSY-A', 600);
    const busyB = await streamOn(nodeB, 'Q-BUSY-B', 600);
    await busyA.until((text) => koboldEvents(text).length >= 2);
    await busyB.until((text) => koboldEvents(text).length >= 2);
    const wait1 = await streamOn(nodeA, 'Q-WAIT-1', 20);
    await wait1.until((text) => queuedPlaces(text).length > 0);
    const wait2 = await streamOn(nodeB, 'Q-WAIT-2', 20);
    await wait2.until((text) => queuedPlaces(text).length > 0);
    const wait3 = await streamOn(nodeA, 'Q-WAIT-3', 20);
    await wait3.until((text) => queuedPlaces(text).length > 0);
    assert.deepEqual(
      [wait1, wait2, wait3].map((s) => queuedPlaces(s.text)[0]),
      [1, 2, 3],
      'one line across both nodes, in arrival order',
    );
    const onB = await postJson(`${nodeB.url}/api/extra/generate/check`, { genkey: 'Q-WAIT-3' });
    assert.equal(onB.body.results[0].status, 'queued');
    assert.equal(onB.body.results[0].queue_position, 3);
    // Three wait fleet-wide, the bound on both nodes: a fourth is refused on either, with Retry-After.
    const full = await fetch(`${nodeB.url}/api/extra/generate/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'x', max_length: 4, genkey: 'Q-FULL' }),
    });
    assert.equal(full.status, 503);
    assert.ok(full.headers.get('retry-after'));
    assert.match(await full.text(), /fleet is busy/);
    // An abort sent to B for a request A holds in the queue ends it there, without running.
    const aborted = await postJson(`${nodeB.url}/api/extra/abort`, { genkey: 'Q-WAIT-1' });
    assert.equal(aborted.body.success, 'true');
    await finished(wait1);
    // Kobold ends an abort as "length" (what KoboldCpp's clients expect); it ended before making any text.
    assert.equal(tokensOf(wait1.text), '');
    assert.match(wait1.text, /"finish_reason": "length"/);
    await postJson(`${nodeA.url}/api/extra/abort`, { genkey: 'Q-BUSY-A' });
    await postJson(`${nodeB.url}/api/extra/abort`, { genkey: 'Q-BUSY-B' });
    await Promise.all([finished(busyA), finished(busyB), finished(wait2), finished(wait3)]);
    assert.ok(tokensOf(wait2.text).length > 0);
    assert.ok(tokensOf(wait3.text).length > 0);
  });

  test('a client that leaves the front node stops its generation on the node that runs it', async () => {
    const busy = await streamOn(nodeA, 'Q-HOLD-A', 600);
    await busy.until((text) => koboldEvents(text).length >= 2);
    // Anonymous (no genkey): its generation ends when its only reader, on A, goes.
    const response = await fetch(`${nodeA.url}/api/extra/generate/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'Far away', max_length: 2000, logit_bias: ban }),
    });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await waitUntil(() => nodeB.context.scheduler.busySlots === 1, 5000, 'B to take the anonymous request');
    await reader.read();
    await reader.cancel();
    await waitUntil(() => nodeB.context.scheduler.busySlots === 0, 3000, "B's slot to free once A's client left");
    await postJson(`${nodeA.url}/api/extra/abort`, { genkey: 'Q-HOLD-A' });
    await finished(busy);
  });
});
