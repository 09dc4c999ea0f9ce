import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { membershipOf } from '../../src/fleet/membership.ts';
import type { RunningServer } from '../../src/main.ts';
import { waitUntil } from '../support/deadline.ts';
import { type RedisServer, startRedisServer } from '../support/redis-server.ts';
import { KindlingProcess } from '../support/server-process.ts';
import { slowTestModelPath } from '../support/test-model.ts';
import { banEndTokens, getJson, postJson, startTestServer } from '../support/test-server.ts';

let redis: RedisServer;
let a: RunningServer;
let b: RunningServer;

const fleetOf = async (server: { url: string }) => getJson(`${server.url}/api/extra/fleet`);
const idsOf = (body: { nodes: { id: string }[] }) => body.nodes.map((node) => node.id).sort();
const idOf = (server: RunningServer) => membershipOf(server.context.redis)?.id ?? '';

describe('fleet membership', () => {
  before(async () => {
    redis = await startRedisServer();
    // A's model is the slow one (~2 ms a token), so that its generation is still running at the next heartbeat.
    a = await startTestServer({ redisUrl: redis.url, parallel: 2, modelPath: slowTestModelPath(), contextSize: 2048 });
    b = await startTestServer({ redisUrl: redis.url, parallel: 1 });
  });
  after(async () => {
    await Promise.allSettled([a?.close(), b?.close()]);
    await redis?.close();
  });

  it('lists both nodes, with their address, model and slots, on either node', async () => {
    for (const server of [a, b]) {
      const { status, body } = await fleetOf(server);
      assert.equal(status, 200);
      assert.equal(body.fleet, true);
      assert.equal(body.node, idOf(server));
      assert.deepEqual(idsOf(body), [idOf(a), idOf(b)].sort());
      const byId = new Map(body.nodes.map((node: { id: string }) => [node.id, node]));
      const nodeA = byId.get(idOf(a)) as Record<string, unknown>;
      const nodeB = byId.get(idOf(b)) as Record<string, unknown>;
      assert.equal(nodeA['address'], a.url);
      assert.equal(nodeB['address'], b.url);
      assert.equal(nodeA['slots'], 2);
      assert.equal(nodeB['slots'], 1);
      assert.equal(nodeA['busy'], 0);
      assert.equal(nodeA['queued'], 0);
      const model = a.context.engine.model;
      assert.deepEqual(nodeA['models'], [
        { id: `koboldcpp/${model.name}`, name: model.name, context_size: model.contextSize },
      ]);
      assert.ok((nodeB['last_heartbeat_ms'] as number) < 3000);
    }
    assert.match(idOf(a), /^node-[0-9a-f]{8}$/);
    assert.notEqual(idOf(a), idOf(b));
  });

  it('shows a busy slot in the next heartbeat', async () => {
    const generation = postJson(`${a.url}/api/v1/generate`, {
      prompt: 'Once',
      max_length: 1500,
      genkey: 'busy1',
      logit_bias: banEndTokens(a),
    });
    try {
      await waitUntil(
        async () => {
          const { body } = await fleetOf(b);
          return body.nodes.find((node: { id: string }) => node.id === idOf(a))?.busy === 1;
        },
        5000,
        'node B to see node A busy',
      );
    } finally {
      await postJson(`${a.url}/api/extra/abort`, { genkey: 'busy1' });
      await generation;
    }
  });

  it('documents the route in /api/openapi.json', async () => {
    const { body } = await getJson(`${a.url}/api/openapi.json`);
    const operation = body.paths['/api/extra/fleet']?.get;
    assert.ok(operation, 'GET /api/extra/fleet is in the OpenAPI document');
    assert.ok(operation.responses['200'].content['application/json'].schema.properties.nodes);
  });

  it('lists --advertise as the address, and never a wildcard host', async () => {
    const advertised = await startTestServer({ redisUrl: redis.url, advertiseUrl: 'http://node-c.example:5001' });
    const wildcard = await startTestServer({ redisUrl: redis.url, host: '0.0.0.0' });
    try {
      const addresses = (await fleetOf(a)).body.nodes.map((node: { address: string }) => node.address);
      assert.ok(addresses.includes('http://node-c.example:5001'), addresses.join(' '));
      const port = new URL(wildcard.url).port;
      const other = addresses.find((address: string) => address.endsWith(`:${port}`));
      assert.ok(other, `the wildcard node is listed: ${addresses.join(' ')}`);
      assert.doesNotMatch(other, /0\.0\.0\.0|\[::\]/, 'a wildcard names no machine another node can reach');
      assert.equal((await fetch(`${other}/api/extra/version`)).status, 200, 'the listed address answers');
    } finally {
      await Promise.all([advertised.close(), wildcard.close()]);
    }
  });

  it('drops a SIGKILLed node within the heartbeat TTL', async () => {
    const child = await KindlingProcess.start({ args: ['--redis', redis.url] });
    try {
      await waitUntil(
        async () => (await fleetOf(a)).body.nodes.some((node: { address: string }) => node.address === child.url),
        10_000,
        'the child node to register',
      );
      child.child.kill('SIGKILL');
      const killedAt = (await child.exited).at;
      await waitUntil(
        async () => !(await fleetOf(a)).body.nodes.some((node: { address: string }) => node.address === child.url),
        6000,
        'the killed node to disappear',
      );
      // The TTL is 3 s; a listing drops it once its key has expired, not before.
      const gone = Date.now() - killedAt;
      assert.ok(gone > 1000 && gone < 5000, `gone after ${gone} ms`);
      assert.deepEqual(idsOf((await fleetOf(b)).body), [idOf(a), idOf(b)].sort());
    } finally {
      child.child.kill('SIGKILL');
    }
  });

  it('keeps serving while Redis is down, answers the fleet route with a 503 naming Redis, and re-registers', async () => {
    await redis.kill();
    await waitUntil(() => !a.context.redis?.ready && !b.context.redis?.ready, 5000, 'the nodes to see Redis gone');
    const { status, body } = await fleetOf(a);
    assert.equal(status, 503);
    assert.match(JSON.stringify(body), /Redis at redis:\/\/127\.0\.0\.1:\d+ is unreachable/);
    // A new generation waits for Redis (its log is the fleet's), with the same 503; the node stays up.
    const generated = await postJson(`${b.url}/api/v1/generate`, { prompt: 'Hi', max_length: 4 });
    assert.equal(generated.status, 503);
    assert.match(JSON.stringify(generated.body), /Redis at redis:\/\/127\.0\.0\.1:\d+ is unreachable/);
    // Two heartbeats pass while Redis is down: neither throws.
    await new Promise((resolve) => setTimeout(resolve, 2200));

    await redis.start();
    await waitUntil(
      async () => {
        const { status: s, body: fleet } = await fleetOf(b);
        return s === 200 && idsOf(fleet).join() === [idOf(a), idOf(b)].sort().join();
      },
      10_000,
      'both nodes to re-register in the restarted (empty) Redis',
    );
  });

  it('deregisters a closed node at once', async () => {
    const idB = idOf(b);
    await b.close();
    const { body } = await fleetOf(a);
    assert.deepEqual(idsOf(body), [idOf(a)]);
    assert.ok(!idsOf(body).includes(idB));
  });
});

describe('a single node without --redis', () => {
  let solo: RunningServer;
  before(async () => {
    solo = await startTestServer({ parallel: 3 });
  });
  after(async () => {
    await solo?.close();
  });

  it('answers the fleet route for itself alone', async () => {
    const { status, body } = await fleetOf(solo);
    assert.equal(status, 200);
    assert.equal(body.fleet, false);
    assert.equal(body.nodes.length, 1);
    assert.equal(body.nodes[0].id, body.node);
    assert.equal(body.nodes[0].address, solo.url);
    assert.equal(body.nodes[0].slots, 3);
    assert.equal(body.nodes[0].last_heartbeat_ms, 0);
    assert.equal(membershipOf(solo.context.redis), undefined);
  });
});
