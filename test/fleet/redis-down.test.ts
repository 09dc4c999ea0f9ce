import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../../src/main.ts';
import type { Generation } from '../../src/scheduler/generation.ts';
import { waitUntil, withDeadline } from '../support/deadline.ts';
import { koboldEvents } from '../support/from-address.ts';
import { type RedisServer, startRedisServer } from '../support/redis-server.ts';
import { openStream } from '../support/sse-capture.ts';
import { slowTestModelPath } from '../support/test-model.ts';
import { banEndTokens, LOCAL_PRINCIPAL, postJson, startTestServer } from '../support/test-server.ts';

const REDIS_503 = /The fleet's Redis at redis:\/\/127\.0\.0\.1:\d+ is unreachable/;

describe('a fleet node while its Redis is unreachable', () => {
  let redis: RedisServer;
  let node: RunningServer;
  before(async () => {
    redis = await startRedisServer();
    node = await startTestServer({ redisUrl: redis.url, modelPath: slowTestModelPath(), contextSize: 2048 });
  });
  after(async () => {
    await node?.close();
    await redis?.close();
  });

  test('refuses new generations with a 503 naming Redis in each protocol, keeps local streams, recovers', async () => {
    // A local stream started before the outage: its only reader is here, so it must run to its end.
    const local = await openStream(`${node.url}/api/extra/generate/stream`, {
      prompt: 'Once upon a time',
      max_length: 1500,
      genkey: 'OUTAGE',
      logit_bias: banEndTokens(node),
    });
    await local.until((text) => koboldEvents(text).length >= 2);
    await redis.kill();
    await waitUntil(() => !node.context.redis?.ready, 5000, 'the node to see Redis gone');
    const generation = node.context.scheduler.find(LOCAL_PRINCIPAL, 'OUTAGE') as Generation;
    assert.ok(!generation.log.ended, 'the local stream still runs once Redis is gone');

    const kobold = await postJson(`${node.url}/api/v1/generate`, { prompt: 'Hi', max_length: 4 });
    assert.equal(kobold.status, 503);
    assert.match(kobold.body.detail.msg, REDIS_503);
    const koboldStream = await postJson(`${node.url}/api/extra/generate/stream`, { prompt: 'Hi', max_length: 4 });
    assert.equal(koboldStream.status, 503);
    assert.match(JSON.stringify(koboldStream.body), REDIS_503);
    const openai = await postJson(`${node.url}/v1/completions`, { prompt: 'Hi', max_tokens: 4 });
    assert.equal(openai.status, 503);
    assert.match(openai.body.error.message, REDIS_503);
    const chat = await postJson(`${node.url}/v1/chat/completions`, {
      messages: [{ role: 'user', content: 'Hi' }],
      max_tokens: 4,
      stream: true,
    });
    assert.equal(chat.status, 503);
    assert.match(chat.body.error.message, REDIS_503);
    assert.equal(node.context.scheduler.find(LOCAL_PRINCIPAL, 'OUTAGE'), generation, 'the node is still up');

    await withDeadline(local.done, 30_000, 'the local stream to end');
    const events = koboldEvents(local.text);
    assert.equal(events.at(-1)?.data.finish_reason, 'length', 'the local stream ended as it would have');
    assert.ok(!/event: error/.test(local.text), local.text.slice(-300));
    assert.equal(events.map((event) => event.data.token ?? '').join(''), generation.log.text);

    await redis.start();
    await waitUntil(() => node.context.redis?.ready === true, 10_000, 'the node to reconnect');
    const again = await postJson(`${node.url}/api/v1/generate`, { prompt: 'Hi', max_length: 4 });
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(typeof again.body.results[0].text, 'string');
  });
});
