import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { waitUntil, withDeadline } from '../support/deadline.ts';
import { parseLikeLite } from '../support/lite-sse-parser.ts';
import { KindlingProcess } from '../support/server-process.ts';
import { openStream } from '../support/sse-capture.ts';
import { slowTestModelPath } from '../support/test-model.ts';
import { getJson, postJson } from '../support/test-server.ts';

const tokens = (stream: string) =>
  parseLikeLite(stream)
    .events.map((e) => e.data.token)
    .join('');

/**
 * An upstream node over another Kindling, both real processes: the lower one serves a generated GGUF model,
 * the upper one runs `--upstream <lower>/v1` and loads none. Everything a client sees comes from the upper one.
 */
describe('kindling serve --upstream over another Kindling (two processes)', () => {
  let lower: KindlingProcess;
  let upper: KindlingProcess;
  before(async () => {
    // The slower tiny model (~2 ms a token): a stream is still running when a test cuts or aborts it.
    lower = await KindlingProcess.start({ modelPath: slowTestModelPath() });
    upper = await KindlingProcess.start({ upstream: `${lower.url}/v1` });
  });
  after(async () => {
    await upper?.stop();
    await lower?.stop();
  });

  test('the upper node serves the lower one’s model, context and greedy text, with usage from the lower one', async () => {
    const models = await getJson(`${upper.url}/v1/models`);
    const lowerModels = await getJson(`${lower.url}/v1/models`);
    assert.equal(models.body.data[0].id, lowerModels.body.data[0].id);
    assert.deepEqual((await getJson(`${upper.url}/api/extra/true_max_context_length`)).body, { value: 512 });
    const body = { prompt: 'Once upon a time', max_length: 24, temperature: 0, rep_pen: 1, ban_eos_token: true };
    const direct = await postJson(`${lower.url}/api/v1/generate`, body);
    const through = await postJson(`${upper.url}/api/v1/generate`, body);
    assert.equal(through.status, 200);
    assert.equal(through.body.results[0].text, direct.body.results[0].text);
    assert.equal(through.body.results[0].completion_tokens, 24);
    assert.equal(through.body.results[0].prompt_tokens, direct.body.results[0].prompt_tokens);
    const chat = await postJson(`${upper.url}/v1/chat/completions`, {
      messages: [{ role: 'user', content: 'Hello' }],
      max_tokens: 6,
      temperature: 0,
    });
    assert.equal(chat.status, 200);
    assert.equal(chat.body.usage.completion_tokens, 6);
  });

  test('tokenize and detokenize use the lower node’s tokenizer', async () => {
    const prompt = { prompt: 'The quick brown fox' };
    const through = await postJson(`${upper.url}/api/extra/tokenize`, prompt);
    const direct = await postJson(`${lower.url}/api/extra/tokenize`, prompt);
    assert.equal(through.status, 200);
    assert.deepEqual(through.body, direct.body);
    const back = await postJson(`${upper.url}/api/extra/detokenize`, { ids: direct.body.ids.slice(1) });
    assert.equal(back.body.result, 'The quick brown fox');
  });

  test('a stop string is held back and cut on the upper node, which reports which one matched', async () => {
    const body = { prompt: 'Once upon a time', max_length: 40, temperature: 0, rep_pen: 1, ban_eos_token: true };
    const full = (await postJson(`${lower.url}/api/v1/generate`, body)).body.results[0].text as string;
    const stop = full.slice(10, 14);
    const cut = full.slice(0, full.indexOf(stop));
    const stream = await openStream(`${upper.url}/api/extra/generate/stream`, { ...body, stop_sequence: [stop] });
    await withDeadline(stream.done, 30_000, 'the stream to end');
    assert.equal(tokens(stream.text), cut);
    assert.equal(parseLikeLite(stream.text).events.at(-1)?.data.finish_reason, 'stop');
  });

  test('a genkey stream cut mid-way resumes on the upper node with nothing lost or repeated', async () => {
    const url = `${upper.url}/api/extra/generate/stream`;
    const body = { prompt: 'x', max_length: 300, ban_eos_token: true, sampler_seed: 5, genkey: 'UPSTREAM1' };
    const first = await openStream(url, body);
    await first.until((text) => parseLikeLite(text).events.length >= 5);
    await first.cancel();
    const seen = parseLikeLite(first.text).events;
    const lastId = [...first.text.matchAll(/^id: (\d+)$/gm)].map((m) => m[1]).at(seen.length - 1) as string;
    const second = await openStream(url, body, { 'last-event-id': lastId });
    await withDeadline(second.done, 30_000, 'the resumed stream to end');
    const resumed = parseLikeLite(second.text).events;
    const joined = seen.map((e) => e.data.token).join('') + resumed.map((e) => e.data.token).join('');
    const check = await postJson(`${upper.url}/api/extra/generate/check`, { genkey: 'UPSTREAM1' });
    assert.equal(check.body.results[0].status, 'done');
    assert.equal(joined, check.body.results[0].text);
    assert.equal(resumed.at(-1)?.data.finish_reason, 'length');
  });

  test('an abort on the upper node frees the lower node’s slot at once', async () => {
    const body = { prompt: 'x', max_length: 5000, ban_eos_token: true, genkey: 'UPSTREAM2' };
    const stream = await openStream(`${upper.url}/api/extra/generate/stream`, body);
    await stream.until((text) => parseLikeLite(text).events.length >= 3);
    const busy = async () =>
      ((await getJson(`${lower.url}/slots`)).body as { is_processing: boolean }[]).some((s) => s.is_processing);
    assert.equal(await busy(), true);
    const aborted = await postJson(`${upper.url}/api/extra/abort`, { genkey: 'UPSTREAM2' });
    assert.equal(aborted.body.success, 'true');
    await waitUntil(async () => !(await busy()), 2000, 'the lower node’s slot to be free');
    await withDeadline(stream.done, 10_000, 'the aborted stream to end');
  });

  test('with the lower node gone, a request is a 503 that names it, and the upper node keeps serving', async () => {
    const url = lower.url;
    await lower.stop();
    const answer = await postJson(`${upper.url}/api/v1/generate`, { prompt: 'x', max_length: 4 });
    assert.equal(answer.status, 503);
    assert.match(JSON.stringify(answer.body), new RegExp(url.replaceAll('.', '\\.')));
    assert.equal((await getJson(`${upper.url}/api/extra/true_max_context_length`)).status, 200);
    assert.equal(upper.running, true);
  });
});
