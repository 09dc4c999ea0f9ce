import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../../src/main.ts';
import type { Generation } from '../../src/scheduler/generation.ts';
import { waitUntil, withDeadline } from '../support/deadline.ts';
import { koboldEvents, requestFrom } from '../support/from-address.ts';
import { type RedisServer, startRedisServer } from '../support/redis-server.ts';
import { openStream } from '../support/sse-capture.ts';
import { slowTestModelPath } from '../support/test-model.ts';
import { banEndTokens, LOCAL_PRINCIPAL, postJson, startTestServer } from '../support/test-server.ts';

/** The complete events of a captured stream (a block still arriving at the end is left out). */
const completeEvents = (text: string) => koboldEvents(text.slice(0, text.lastIndexOf('\n\n') + 2));
const chatBlocks = (text: string) =>
  text
    .slice(0, text.lastIndexOf('\n\n') + 2)
    .split('\n\n')
    .filter((block) => /^data: \{/m.test(block))
    .map((block) => ({
      id: /^id: (.*)$/m.exec(block)?.[1],
      chunk: JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? ''),
    }));
const chatText = (blocks: ReturnType<typeof chatBlocks>) =>
  blocks.map((b) => b.chunk.choices?.[0]?.delta?.content ?? '').join('');
const anthropicEvents = (text: string) =>
  text
    .slice(0, text.lastIndexOf('\n\n') + 2)
    .split('\n\n')
    .map((block) => /^id: (.*)\nevent: (.*)\ndata: (.*)$/.exec(block))
    .filter((match) => match !== null)
    .map((m) => ({ id: m[1] as string, type: m[2] as string, data: JSON.parse(m[3] as string) }));
const tokensOf = (events: ReturnType<typeof koboldEvents>) => events.map((e) => e.data.token ?? '').join('');

describe('a fleet of two nodes shares its generation logs through Redis', () => {
  let redis: RedisServer;
  let nodeA: RunningServer;
  let nodeB: RunningServer;
  let ban: Record<string, number>;
  before(async () => {
    redis = await startRedisServer();
    // The slower model (~2 ms a token) so a generation on A still runs while the test acts on B.
    const config = { redisUrl: redis.url, modelPath: slowTestModelPath(), contextSize: 2048 };
    // A short resume window on A: a generation whose only reader is on B must still outlive it.
    nodeA = await startTestServer({ ...config, resumeWindowMs: 300 });
    nodeB = await startTestServer(config);
    ban = banEndTokens(nodeA);
  });
  after(async () => {
    await Promise.allSettled([nodeA?.close(), nodeB?.close()]);
    await redis?.close();
  });
  const onA = (key: string) => nodeA.context.scheduler.find(LOCAL_PRINCIPAL, key) as Generation;
  const startOnA = (genkey: string, maxLength: number) =>
    openStream(`${nodeA.url}/api/extra/generate/stream`, {
      prompt: 'Once upon a time',
      max_length: maxLength,
      sampler_seed: 7,
      genkey,
      logit_bias: ban,
    });

  test("B's /check answers for a generation running on A, and its final text is A's", async () => {
    const stream = await startOnA('FLEETCHECK', 600);
    await stream.until((text) => completeEvents(text).length >= 3);
    // A writes text to Redis at most FLEET_WRITE_WINDOW_MS after it streamed it: B sees it within a few polls.
    let running: Awaited<ReturnType<typeof postJson>> | undefined;
    await waitUntil(
      async () => {
        running = await postJson(`${nodeB.url}/api/extra/generate/check`, { genkey: 'FLEETCHECK' });
        return running.body.results[0].text.length > 0;
      },
      1000,
      'B to see the text A generated so far',
    );
    assert.equal(running?.status, 200);
    const live = running?.body.results[0];
    assert.equal(live.status, 'running');
    assert.ok(Number(live.last_event_id) >= 2, live.last_event_id);
    assert.equal(nodeB.context.scheduler.find(LOCAL_PRINCIPAL, 'FLEETCHECK'), undefined, 'B does not run it');

    await stream.done;
    const generation = onA('FLEETCHECK');
    assert.ok(generation.log.ended);
    // The final write reaches Redis within a turn of the event loop: poll briefly rather than sleep.
    let final: any;
    await waitUntil(
      async () => {
        final = (await postJson(`${nodeB.url}/api/extra/generate/check`, { genkey: 'FLEETCHECK' })).body.results[0];
        return final.status === 'done';
      },
      5000,
      "B's check to see A's generation end",
    );
    assert.ok(live.text.length < generation.log.text.length && generation.log.text.startsWith(live.text));
    assert.equal(final.text, generation.log.text);
    assert.equal(final.finish_reason, 'length');
    assert.equal(final.last_event_id, String(generation.log.lastId));

    // The key is free again once its generation ended: a new request on B runs there, not a 409.
    const reused = await postJson(`${nodeB.url}/api/v1/generate`, {
      prompt: 'Again',
      max_length: 8,
      genkey: 'FLEETCHECK',
    });
    assert.equal(reused.status, 200, JSON.stringify(reused.body));
    assert.equal(nodeB.context.scheduler.find(LOCAL_PRINCIPAL, 'FLEETCHECK')?.log.text, reused.body.results[0].text);

    const unknown = await postJson(`${nodeB.url}/api/extra/generate/check`, { genkey: 'FLEETNOBODY' });
    assert.equal(unknown.body.results[0].status, 'unknown');
  });

  test('a stream cut on A resumes on B with Last-Event-ID: no token lost or repeated', async () => {
    const stream = await startOnA('FLEETRESUME', 800);
    await stream.until((text) => completeEvents(text).length >= 5);
    await stream.cancel();
    const seen = completeEvents(stream.text);
    const lastId = seen.at(-1)?.id as string;
    assert.ok(Number(lastId) >= 5, lastId);
    assert.ok(!onA('FLEETRESUME').log.ended, 'A still generates after the cut');

    const resumed = await requestFrom('127.0.0.1', `${nodeB.url}/api/extra/generate/stream`, {
      body: { prompt: 'Once upon a time', max_length: 800, sampler_seed: 7, genkey: 'FLEETRESUME', logit_bias: ban },
      headers: { 'Last-Event-ID': lastId },
      timeoutMs: 30_000,
    });
    assert.equal(resumed.status, 200);
    const rest = koboldEvents(resumed.text);
    assert.ok(rest.length > 1, 'B streamed the rest');
    assert.ok(Number(rest[0]?.id) > Number(lastId), `B starts after ${lastId}, at ${rest[0]?.id}`);
    assert.equal(rest.at(-1)?.data.finish_reason, 'length');
    const generation = onA('FLEETRESUME');
    assert.ok(generation.log.ended);
    assert.equal(tokensOf(seen) + tokensOf(rest), generation.log.text);
    assert.equal(nodeB.context.scheduler.find(LOCAL_PRINCIPAL, 'FLEETRESUME'), undefined, 'B ran nothing itself');
  });

  test('an OpenAI chat stream cut on A resumes on B: same chunk id, the text continues exactly', async () => {
    const body = {
      messages: [{ role: 'user', content: 'Tell a story' }],
      max_tokens: 600,
      seed: 5,
      stream: true,
      logit_bias: ban,
    };
    const headers = { 'X-Kindling-Stream': 'fleet-chat-resume' };
    const stream = await openStream(`${nodeA.url}/v1/chat/completions`, body, headers);
    await stream.until((text) => chatBlocks(text).length >= 5);
    await stream.cancel();
    const seen = chatBlocks(stream.text);
    const lastId = seen.at(-1)?.id as string;
    assert.ok(lastId !== undefined && Number(lastId) > 0, String(lastId));

    const resumed = await requestFrom('127.0.0.1', `${nodeB.url}/v1/chat/completions`, {
      body,
      headers: { ...headers, 'Last-Event-ID': lastId },
      timeoutMs: 30_000,
    });
    assert.equal(resumed.status, 200);
    assert.match(resumed.text, /data: \[DONE\]/);
    const rest = chatBlocks(resumed.text);
    const generation = onA('fleet-chat-resume');
    assert.ok(generation.log.ended);
    assert.equal(chatText(seen) + chatText(rest), generation.log.text);
    assert.ok(chatText(rest).length > 0, 'B streamed the rest');
    const ids = new Set([...seen, ...rest].map((b) => b.chunk.id));
    assert.equal(ids.size, 1, `one completion id on both nodes: ${[...ids].join(', ')}`);
  });

  test('an Anthropic messages stream cut on A resumes on B after its last event id', async () => {
    // Greedy, so this random model's text (and where it ends) is the same on every run.
    const body = {
      model: 'x',
      max_tokens: 600,
      temperature: 0,
      messages: [{ role: 'user', content: 'Hi' }],
      stream: true,
    };
    const headers = { 'X-Kindling-Stream': 'fleet-anthropic-resume' };
    const stream = await openStream(`${nodeA.url}/v1/messages`, body, headers);
    await stream.until((text) => anthropicEvents(text).filter((e) => e.type === 'content_block_delta').length >= 3);
    await stream.cancel();
    const seen = anthropicEvents(stream.text);
    const lastId = String(seen.at(-1)?.id);
    const resumed = await requestFrom('127.0.0.1', `${nodeB.url}/v1/messages`, {
      body,
      headers: { ...headers, 'Last-Event-ID': lastId },
      timeoutMs: 30_000,
    });
    assert.equal(resumed.status, 200);
    const rest = anthropicEvents(resumed.text);
    assert.equal(rest[0]?.type, 'content_block_delta', 'B starts after the last event seen, not with message_start');
    assert.equal(rest.at(-1)?.type, 'message_stop');
    const text = (events: typeof seen) =>
      events.map((e) => (e.type === 'content_block_delta' ? e.data.delta.text : '')).join('');
    const generation = onA('fleet-anthropic-resume');
    assert.ok(generation.log.ended && generation.log.text.length > 0);
    assert.equal(text(seen) + text(rest), generation.log.text);
  });

  test('a key live on A is one generation fleet-wide: B replays a re-sent request and refuses another with 409', async () => {
    const body = {
      prompt: 'Once upon a time',
      max_length: 1200,
      sampler_seed: 7,
      genkey: 'FLEETONCE',
      logit_bias: ban,
    };
    const stream = await openStream(`${nodeA.url}/api/extra/generate/stream`, body);
    await stream.until((text) => completeEvents(text).length >= 3);

    const other = await postJson(`${nodeB.url}/api/v1/generate`, { ...body, prompt: 'Another story' });
    assert.equal(other.status, 409, JSON.stringify(other.body));
    assert.match(JSON.stringify(other.body), /FLEETONCE/);
    // The same request re-sent (a client that lost its connection), without Last-Event-ID, replays from the start.
    const again = await requestFrom('127.0.0.1', `${nodeB.url}/api/extra/generate/stream`, { body, timeoutMs: 30_000 });
    assert.equal(again.status, 200);
    const generation = onA('FLEETONCE');
    assert.ok(generation.log.ended);
    assert.equal(tokensOf(koboldEvents(again.text)), generation.log.text);
    assert.ok(generation.log.text.length > 0);
    assert.equal(nodeB.context.scheduler.find(LOCAL_PRINCIPAL, 'FLEETONCE'), undefined, 'B ran nothing itself');
    await stream.done;
    assert.equal(tokensOf(completeEvents(stream.text)), generation.log.text);
  });

  test("a generation read only through B outlives A's resume window: B's follower keeps it wanted", async () => {
    const stream = await startOnA('FLEETLONG', 1900);
    await stream.until((text) => completeEvents(text).length >= 3);
    await stream.cancel();
    const lastId = completeEvents(stream.text).at(-1)?.id as string;
    const resumed = await requestFrom('127.0.0.1', `${nodeB.url}/api/extra/generate/stream`, {
      body: { prompt: 'Once upon a time', max_length: 1900, sampler_seed: 7, genkey: 'FLEETLONG', logit_bias: ban },
      headers: { 'Last-Event-ID': lastId },
      timeoutMs: 40_000,
    });
    assert.equal(resumed.status, 200);
    const generation = onA('FLEETLONG');
    const last = generation.log.last;
    assert.ok(last?.type === 'finish', JSON.stringify(last));
    // The longest the context allows (~0.9 s on a quiet machine): more than two of A's windows.
    const ranMs = Date.now() - generation.createdAt;
    assert.ok(ranMs > 2 * 300, `it ran past the window more than once (${ranMs} ms)`);
    assert.equal(last.reason, 'max-tokens', 'not aborted by the resume window');
    assert.equal(last.usage.completionTokens, generation.maxTokens);
  });

  test("/abort on B stops A's generation within a batch and a round trip, and frees A's slot", async () => {
    const stream = await startOnA('FLEETABORT', 1500);
    await stream.until((text) => completeEvents(text).length >= 3);
    const generation = onA('FLEETABORT');
    assert.equal(nodeA.context.scheduler.busySlots, 1);
    const sent = Date.now();
    const aborted = await postJson(`${nodeB.url}/api/extra/abort`, { genkey: 'FLEETABORT' });
    assert.equal(aborted.body.success, 'true');
    await waitUntil(() => generation.log.ended, 2000, "A's generation to stop");
    const tookMs = Date.now() - sent;
    assert.equal(generation.stopReason, 'abort');
    await stream.done;
    const events = completeEvents(stream.text);
    // Kobold's wire says "length" for an abort (KoboldCpp clients keep the partial text); the log says why.
    assert.equal(events.at(-1)?.data.finish_reason, 'length');
    const last = generation.log.last;
    assert.ok(last?.type === 'finish' && last.usage.completionTokens < 1500, 'cut short, not run to its length');
    assert.ok(generation.log.text.length > 0 && tokensOf(events) === generation.log.text);
    await waitUntil(() => nodeA.context.scheduler.busySlots === 0, 2000, "A's slot to free");
    assert.ok(tookMs < 2000, `stopped after ${tookMs} ms`);

    const again = await postJson(`${nodeB.url}/api/extra/abort`, { genkey: 'FLEETABORT' });
    assert.equal(again.body.success, 'false', 'an ended generation is not aborted twice');
  });

  // Last: it kills Redis.
  test('a stream followed on B ends with an error event naming Redis when Redis goes away, not a hang', async () => {
    const stream = await startOnA('FLEETREDIS', 1900);
    await stream.until((text) => completeEvents(text).length >= 3);
    await stream.cancel();
    const lastId = completeEvents(stream.text).at(-1)?.id as string;
    const body = {
      prompt: 'Once upon a time',
      max_length: 1900,
      sampler_seed: 7,
      genkey: 'FLEETREDIS',
      logit_bias: ban,
    };
    const follower = await openStream(`${nodeB.url}/api/extra/generate/stream`, body, { 'Last-Event-ID': lastId });
    await follower.until((text) => completeEvents(text).length >= 2);
    await redis.kill();
    await withDeadline(follower.done, 10_000, "B's stream to end after Redis went away");
    const events = completeEvents(follower.text);
    assert.equal(events.at(-1)?.data.finish_reason, 'error', follower.text.slice(-300));
    assert.match(follower.text, /Redis/);
    await redis.start();
  });
});
