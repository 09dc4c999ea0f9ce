import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { KindlingWsClient, type WebSocketConstructorLike } from '../../src/client/index.ts';
import type { RunningServer } from '../../src/main.ts';
import { waitUntil, within } from '../support/deadline.ts';
import { startFaultProxy } from '../support/fault-proxy.ts';
import { type RedisServer, startRedisServer } from '../support/redis-server.ts';
import { slowTestModelPath } from '../support/test-model.ts';
import { banEndTokens, LOCAL_PRINCIPAL, postJson, startTestServer } from '../support/test-server.ts';
import { WsSession } from '../support/ws-session.ts';

// The WebSocket bridge on a fleet: a generation started over one node's WebSocket resumes over another's, and a
// WebSocket abort on one node stops a generation running on another.
describe('the WebSocket bridge across two nodes (real nodes, real Redis)', () => {
  let redis: RedisServer;
  let nodeA: RunningServer;
  let nodeB: RunningServer;
  let ban: Record<string, number>;
  const wsOf = (node: RunningServer) => `${node.url.replace('http', 'ws')}/api/extra/generate/ws`;
  before(async () => {
    redis = await startRedisServer();
    const config = { redisUrl: redis.url, modelPath: slowTestModelPath(), contextSize: 2048 };
    nodeA = await startTestServer(config);
    nodeB = await startTestServer(config);
    ban = banEndTokens(nodeA);
  });
  after(async () => {
    await Promise.allSettled([nodeA?.close(), nodeB?.close()]);
    await redis?.close();
  });

  test("a stream dropped on A's WebSocket resumes on B's with last_event_id: no token lost or twice", async () => {
    const request = { prompt: 'Once upon a time', max_length: 600, sampler_seed: 4, logit_bias: ban };
    const first = await WsSession.open(wsOf(nodeA));
    first.send({ type: 'start', id: 'FLEETWS', request });
    await first.until((messages) => messages.filter((m) => m.type === 'token').length >= 5);
    first.socket.terminate();
    const tokens = first.messages.filter((m) => m.type === 'token');
    const seen = tokens.map((m) => m.text).join('');
    const second = await WsSession.open(wsOf(nodeB));
    second.send({ type: 'start', id: 'FLEETWS', request, last_event_id: tokens.at(-1)?.event_id });
    await second.until(() => Boolean(second.ended('FLEETWS')), 60_000);
    assert.equal(nodeB.context.scheduler.find(LOCAL_PRINCIPAL, 'FLEETWS'), undefined, 'B ran nothing itself');
    const check = await postJson(`${nodeA.url}/api/extra/generate/check`, { genkey: 'FLEETWS' });
    assert.equal(check.body.results[0].status, 'done');
    assert.equal(seen + second.text('FLEETWS'), check.body.results[0].text);
    second.socket.close();
  });

  test("an abort over B's WebSocket stops the generation A runs", async () => {
    const request = { prompt: 'Once upon a time', max_length: 1500, sampler_seed: 5, logit_bias: ban };
    const onA = await WsSession.open(wsOf(nodeA));
    onA.send({ type: 'start', id: 'FLEETWSABORT', request });
    await onA.until((messages) => messages.filter((m) => m.type === 'token').length >= 3);
    const onB = await WsSession.open(wsOf(nodeB));
    onB.send({ type: 'abort', id: 'FLEETWSABORT' });
    await onB.until((messages) => messages.some((m) => m.type === 'aborted'));
    assert.deepEqual(
      onB.messages.find((m) => m.type === 'aborted'),
      { type: 'aborted', id: 'FLEETWSABORT', success: true },
      JSON.stringify(onB.messages),
    );
    await onA.until(() => Boolean(onA.ended('FLEETWSABORT')), 10_000);
    const generated = onA.messages.filter((m) => m.type === 'token').length;
    assert.ok(generated < 1500, `${generated} tokens: stopped early`);
    await waitUntil(() => nodeA.context.scheduler.busySlots === 0, 5000, "A's slot to be free");
    onA.socket.close();
    onB.socket.close();
  });

  test("KindlingWsClient with both nodes: cut on the way to A, it moves to B at once and resumes A's generation there", async () => {
    const toA = await startFaultProxy({ target: nodeA.url, minBytes: 3000, maxBytes: 4000, maxCuts: 1, mode: 'reset' });
    let upgradesOnB = 0;
    const countUpgrade = () => {
      upgradesOnB++;
    };
    nodeB.app.server.on('upgrade', countUpgrade);
    const client = new KindlingWsClient({
      baseUrl: [toA.url, nodeB.url],
      WebSocket: WebSocket as unknown as WebSocketConstructorLike,
      retry: { baseDelayMs: 5000 }, // a hop that waited for the backoff would miss the deadline below
    });
    try {
      const stream = client.stream({
        prompt: 'Once upon a time',
        maxTokens: 400,
        seed: 6,
        genkey: 'FLEETWSHOP',
        extra: { logit_bias: ban },
      });
      const statuses: string[] = [];
      let text = '';
      for await (const event of within(stream, 30_000, 'the stream to end')) {
        if (event.type === 'text') text += event.text;
        if (event.type === 'status') statuses.push(`${event.status}:${event.detail?.delayMs}`);
      }
      assert.equal(toA.cuts, 1, 'the connection through A was cut once');
      assert.ok(upgradesOnB >= 1, 'the client connected to B');
      assert.ok(statuses.includes('reconnecting:0'), `an immediate hop: ${statuses.join(', ')}`);
      assert.equal(nodeB.context.scheduler.find(LOCAL_PRINCIPAL, 'FLEETWSHOP'), undefined, 'B ran nothing itself');
      const check = await postJson(`${nodeA.url}/api/extra/generate/check`, { genkey: 'FLEETWSHOP' });
      assert.equal(check.body.results[0].status, 'done');
      assert.equal(text, check.body.results[0].text, 'no token lost or twice across the hop');
      assert.equal((await stream.result).text, text);
    } finally {
      nodeB.app.server.off('upgrade', countUpgrade);
      client.close();
      await toA.close();
    }
  });
});
