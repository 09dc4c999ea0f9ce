import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RunningServer } from '../../src/main.ts';
import { waitUntil } from '../support/deadline.ts';
import { type RedisServer, startRedisServer } from '../support/redis-server.ts';
import { slowTestModelPath } from '../support/test-model.ts';
import { getJson, startTestServer } from '../support/test-server.ts';

let redis: RedisServer;
let a: RunningServer;
let b: RunningServer;

const idOf = (server: RunningServer) => `koboldcpp/${server.context.engine.model.name}`;
const openaiIds = async (server: RunningServer) =>
  (await getJson(`${server.url}/v1/models`)).body.data.map((entry: { id: string }) => entry.id);
const ollamaNames = async (server: RunningServer) =>
  (await getJson(`${server.url}/api/tags`)).body.models.map((entry: { name: string }) => entry.name);

describe("the fleet's models on every node", () => {
  before(async () => {
    redis = await startRedisServer();
    a = await startTestServer({ redisUrl: redis.url });
    b = await startTestServer({ redisUrl: redis.url, modelPath: slowTestModelPath() });
  });
  after(async () => {
    await Promise.allSettled([a?.close(), b?.close()]);
    await redis?.close();
  });

  it('lists every live node’s model, its own first, on /v1/models and /api/tags', async () => {
    assert.notEqual(idOf(a), idOf(b), 'the two nodes serve different models');
    assert.deepEqual(await openaiIds(a), [idOf(a), idOf(b)]);
    assert.deepEqual(await openaiIds(b), [idOf(b), idOf(a)]);
    assert.deepEqual(await ollamaNames(a), [`${idOf(a)}:latest`, `${idOf(b)}:latest`]);
    const remote = (await getJson(`${a.url}/api/tags`)).body.models[1];
    assert.equal(remote.size, 0);
    assert.match(remote.digest, /^[0-9a-f]{64}$/);
  });

  it('refuses a model no live node serves with a 404 naming them, and points to the node of another one', async () => {
    const post = (path: string, body: unknown) =>
      fetch(`${a.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
        body: JSON.stringify(body),
      });
    const chat = { messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 };
    const unknown = await post('/v1/chat/completions', { ...chat, model: 'gpt-4o' });
    assert.equal(unknown.status, 404);
    const message = (await unknown.json()).error.message as string;
    assert.match(message, /'gpt-4o' is not served by any live node/);
    assert.ok(message.includes(`'${idOf(a)}'`) && message.includes(`'${idOf(b)}'`), message);
    const elsewhere = await post('/v1/messages', { ...chat, model: idOf(b) });
    assert.equal(elsewhere.status, 404);
    assert.ok((await elsewhere.text()).includes(b.url), 'names the node that serves it');
    const ollama = await post('/api/chat', { ...chat, model: 'llama3:8b', stream: false });
    assert.equal(ollama.status, 404);
    // Its own model, by id, name or Ollama tag, and no model at all, generate as on one node.
    for (const model of [idOf(a), a.context.engine.model.name, `${idOf(a)}:latest`]) {
      const ok = await post('/v1/chat/completions', { ...chat, model });
      assert.equal(ok.status, 200, model);
    }
    assert.equal((await post('/v1/completions', { prompt: 'x', max_tokens: 2 })).status, 200);
  });

  it('shows its own model alone while Redis is down, and the fleet again once it is back', async () => {
    await redis.kill();
    await waitUntil(() => !a.context.redis?.ready, 5000, 'node A to see Redis gone');
    const { status, body } = await getJson(`${a.url}/v1/models`);
    assert.equal(status, 200);
    assert.deepEqual(
      body.data.map((entry: { id: string }) => entry.id),
      [idOf(a)],
    );
    await redis.start();
    await waitUntil(async () => (await openaiIds(a)).length === 2, 10_000, 'node B to be listed again');
  });

  it('drops a closed node’s model', async () => {
    await b.close();
    assert.deepEqual(await openaiIds(a), [idOf(a)]);
    assert.deepEqual(await ollamaNames(a), [`${idOf(a)}:latest`]);
  });
});
