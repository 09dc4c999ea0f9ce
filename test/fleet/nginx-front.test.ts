import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createClient } from '@redis/client';
import { createClient as createKindlingClient, type StreamEvent } from '../../src/client/index.ts';
import { fleetKeys } from '../../src/fleet/fleet-part.ts';
import { waitUntil, within } from '../support/deadline.ts';
import { koboldEvents } from '../support/from-address.ts';
import { type NginxProxy, startNginxFleetFront } from '../support/nginx-proxy.ts';
import { type RedisServer, startRedisServer } from '../support/redis-server.ts';
import { KindlingProcess } from '../support/server-process.ts';
import { openStream, type StreamCapture } from '../support/sse-capture.ts';
import { SLOW_MODEL_HPARAMS, testModelPath } from '../support/test-model.ts';
import { banEndTokens, getJson, LOCAL_PRINCIPAL, postJson, startTestServer } from '../support/test-server.ts';

/**
 * nginx, configured as docs/fleet.md says, in front of two real node processes: a client that only knows nginx
 * keeps its stream when the node holding its connection is SIGKILLed, because the stream resumes through nginx on
 * the node that runs it.
 */
describe('nginx in front of a two-node fleet, one node killed mid-stream', () => {
  // A 4k context: the generations that keep both slots busy outlast the setup on a fast machine.
  const modelPath = testModelPath('F16', { hparams: { ...SLOW_MODEL_HPARAMS, contextLength: 4096 } });
  let redis: RedisServer;
  let nodes: KindlingProcess[] = [];
  let front: NginxProxy;
  let probe: ReturnType<typeof createClient>;
  let ban: Record<string, number>;
  before(async () => {
    redis = await startRedisServer();
    // The end tokens of the model both nodes load, read from an in-process copy.
    const local = await startTestServer({ modelPath, contextSize: 512 });
    ban = banEndTokens(local);
    await local.close();
    const args = ['--redis', redis.url, '--contextsize', '4096', '--parallel', '1'];
    nodes = await Promise.all([KindlingProcess.start({ modelPath, args }), KindlingProcess.start({ modelPath, args })]);
    front = await startNginxFleetFront(nodes.map((node) => node.url));
    probe = createClient({ url: redis.url });
    await probe.connect();
  });
  after(async () => {
    await probe?.close();
    await front?.close();
    await Promise.allSettled(nodes.map((node) => node.kill()));
    await redis?.close();
  });

  test('the node that held only the connection dies: the stream resumes on the node that runs it, nothing lost', async () => {
    const ids = await Promise.all(
      nodes.map(async (node) => (await getJson(`${node.url}/api/extra/fleet`)).body.node as string),
    );
    // Both slots busy (sent to each node directly), so the client's request waits in the fleet's queue.
    const busy: StreamCapture[] = await Promise.all(
      nodes.map((node, i) =>
        openStream(`${node.url}/api/extra/generate/stream`, {
          prompt: 'Once upon a time',
          max_length: 4000,
          sampler_seed: 3,
          genkey: `NX-BUSY-${i}`,
          logit_bias: ban,
        }),
      ),
    );
    await Promise.all(busy.map((stream) => stream.until((text) => koboldEvents(text).length >= 2)));

    const client = createKindlingClient('kobold', {
      baseUrl: front.url,
      retry: { maxRetries: 6, baseDelayMs: 20, maxDelayMs: 200 },
    });
    const stream = client.stream({
      prompt: 'Far away',
      seed: 5,
      maxTokens: 300,
      genkey: 'NX-JOB',
      extra: { logit_bias: ban },
    });
    const events: StreamEvent[] = [];
    const reading = (async () => {
      for await (const event of within(stream, 60_000, 'the stream through nginx to end')) events.push(event);
    })();
    const job = `kindling:job:${fleetKeys.base(LOCAL_PRINCIPAL, 'NX-JOB')}`;
    await waitUntil(async () => (await probe.hGet(job, 'front')) !== null, 5000, 'the request to wait in the queue');
    const frontId = (await probe.hGet(job, 'front')) as string;
    const holder = ids.indexOf(frontId);
    assert.ok(holder >= 0, `the front ${frontId} is one of ${ids}`);
    const runner = 1 - holder;
    // The other node's slot frees and it takes the job: the connection is on one node, the generation on the other.
    await postJson(`${(nodes[runner] as KindlingProcess).url}/api/extra/abort`, { genkey: `NX-BUSY-${runner}` });
    const texts = () => events.filter((event) => event.type === 'text').length;
    await waitUntil(() => texts() >= 5, 10_000, 'text to reach the client through the front');
    const record = `kindling:gen:${fleetKeys.base(LOCAL_PRINCIPAL, 'NX-JOB')}:rec`;
    assert.equal(await probe.hGet(record, 'node'), ids[runner], 'the node with the free slot runs it');

    await (nodes[holder] as KindlingProcess).kill();
    await reading;
    const result = await stream.result;
    const reconnects = events.filter((event) => event.type === 'status' && event.status === 'reconnecting').length;
    assert.ok(reconnects >= 1, 'the cut was seen and the stream reconnected');
    let lastId = 0;
    for (const event of events) {
      if (event.type !== 'text' || event.id === undefined) continue;
      assert.ok(Number(event.id) > lastId, `event id ${event.id} after ${lastId}: nothing repeated`);
      lastId = Number(event.id);
    }
    const runnerUrl = (nodes[runner] as KindlingProcess).url;
    const checked = (await postJson(`${runnerUrl}/api/extra/generate/check`, { genkey: 'NX-JOB' })).body.results[0];
    assert.equal(checked.status, 'done');
    assert.equal(
      events.flatMap((event) => (event.type === 'text' ? [event.text] : [])).join(''),
      checked.text,
      'the client got every token the runner made, once',
    );
    assert.equal(result.text, checked.text);
    assert.ok(checked.text.length > 0);
    await postJson(`${runnerUrl}/api/extra/abort`, { genkey: `NX-BUSY-${holder}` });
  });
});
