import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AbortedError, createClient, KoboldClient, type StreamEvent } from '../../src/client/index.ts';
import { waitUntil, within } from '../support/deadline.ts';
import { slowTestModelPath } from '../support/test-model.ts';
import { banEndTokens, postJson, startTestServer } from '../support/test-server.ts';

/** The server's own record of a generation, by key. */
async function check(baseUrl: string, genkey: string): Promise<{ status: string; text: string }> {
  return (await postJson(`${baseUrl}/api/extra/generate/check`, { genkey })).body.results[0];
}

// Our server's sync generate and /check are what the SDK's polling transport is built on: this runs it against
// the real server and engine, not a fake of them.
test('the SDK polling the real Kindling server: text grows through /check, adds up to the sync answer, and stops on abort', async (t) => {
  const server = await startTestServer({ modelPath: slowTestModelPath() });
  t.after(() => server.close());
  const client = createClient('kobold', { baseUrl: server.url, pollIntervalMs: 10 });
  assert.ok(client instanceof KoboldClient);
  const request = { prompt: 'Once upon a time', seed: 4, maxTokens: 120, extra: { logit_bias: banEndTokens(server) } };

  const stream = client.poll({ ...request, genkey: 'POLL-REAL' });
  const events: StreamEvent[] = [];
  for await (const event of within(stream, 120_000, 'the polled generation to end')) events.push(event);
  const result = await stream.result;
  const texts = events.flatMap((e) => (e.type === 'text' ? [e.text] : []));
  assert.equal(texts.join(''), result.text);
  assert.ok(texts.length >= 2, `${texts.length} text events`);
  assert.equal(result.stopReason, 'length');
  const record = await check(server.url, 'POLL-REAL');
  assert.deepEqual(record, { ...record, status: 'done', text: result.text });
  t.diagnostic(`${texts.length} text events for ${result.text.length} characters`);

  const controller = new AbortController();
  const stopped = client.poll({ ...request, maxTokens: 4000, genkey: 'POLL-STOP' }, { signal: controller.signal });
  let received = '';
  await assert.rejects(
    (async () => {
      for await (const event of within(stopped, 120_000, 'the polled generation to stop')) {
        if (event.type === 'text') received += event.text;
        if (received.length > 0) controller.abort();
      }
    })(),
    (error: unknown) => error instanceof AbortedError && error.partial?.text === received,
  );
  await waitUntil(async () => (await check(server.url, 'POLL-STOP')).status === 'done', 10_000, 'the abort');
});
