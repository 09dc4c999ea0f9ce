import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import type { RunningServer } from '../../src/main.ts';
import { koboldEvents, requestFrom } from '../support/from-address.ts';
import { openStream } from '../support/sse-capture.ts';
import { banEndTokens, LOCAL_PRINCIPAL, startTestServer } from '../support/test-server.ts';

/** Two clients on one machine: all of 127/8 is loopback, so each address is its own principal. */
const ALICE = '127.0.0.1';
const BOB = '127.0.0.2';

const streamText = (text: string) =>
  koboldEvents(text)
    .map((e) => e.data.token ?? '')
    .join('');

describe('a stream key is not a door: generations are scoped to the principal that made them', () => {
  let server: RunningServer;
  let url: (path: string) => string;
  before(async () => {
    server = await startTestServer({ contextSize: 1024, parallel: 2 });
    url = (path) => `${server.url}${path}`;
  });
  after(async () => server.close());

  const stream = (from: string, body: unknown, headers: Record<string, string> = {}) =>
    requestFrom(from, url('/api/extra/generate/stream'), { body, headers });
  const check = (from: string, genkey?: string) =>
    requestFrom(from, url('/api/extra/generate/check'), { body: genkey === undefined ? {} : { genkey } });
  const abort = (from: string, genkey?: string) =>
    requestFrom(from, url('/api/extra/abort'), { body: genkey === undefined ? {} : { genkey } });
  /** A stream from Alice's address that runs until aborted (end tokens banned, a long max_length). */
  const longStream = async (genkey?: string) => {
    const capture = await openStream(url('/api/extra/generate/stream'), {
      prompt: 'Once',
      max_length: 400,
      // Every end token, not only EOS: the test model's <|im_end|> ends a generation too.
      logit_bias: banEndTokens(server),
      ...(genkey ? { genkey } : {}),
    });
    await capture.until((text) => koboldEvents(text).length >= 2);
    return capture;
  };

  test('another principal gets exactly what an unknown key gets: for check, last_logprobs, abort and resume', async () => {
    const body = { prompt: 'Once upon', max_length: 8, sampler_seed: 11, genkey: 'KCPP4821', logprobs: true };
    const own = await stream(ALICE, body);
    assert.equal(own.status, 200);
    const text = streamText(own.text);
    assert.ok(text.length > 0);

    assert.equal((await check(ALICE, 'KCPP4821')).json.results[0].text, text);
    const unknown = (await check(BOB, 'KCPP-never-used')).json;
    const foreign = (await check(BOB, 'KCPP4821')).json;
    assert.deepEqual(foreign, unknown, "Bob sees Alice's key exactly as an unknown key");
    assert.equal(foreign.results[0].status, 'unknown');

    const logprobs = (from: string) =>
      requestFrom(from, url('/api/extra/last_logprobs'), { body: { genkey: 'KCPP4821' } });
    assert.notEqual((await logprobs(ALICE)).json.logprobs, null);
    assert.deepEqual((await logprobs(BOB)).json, { logprobs: null });
    assert.deepEqual((await abort(BOB, 'KCPP4821')).json, { success: 'false', done: 'false' });

    // Bob "resuming" Alice's key starts his own generation; he never sees her text.
    const bobs = await stream(BOB, { ...body, prompt: 'Different words', sampler_seed: 12 }, { 'Last-Event-ID': '0' });
    assert.equal(bobs.status, 200);
    assert.notEqual(bobs.headers['x-kindling-generation'], own.headers['x-kindling-generation']);
    assert.equal((await check(ALICE, 'KCPP4821')).json.results[0].text, text, "Alice's generation is untouched");
  });

  test('two principals may use the same genkey at once without colliding', async () => {
    const alice = await longStream('SHARED1');
    const bob = await stream(BOB, {
      prompt: 'Hello',
      max_length: 4,
      genkey: 'SHARED1',
      logit_bias: banEndTokens(server),
    });
    assert.equal(bob.status, 200, 'no 409: the registry key is principal + key');
    assert.equal(koboldEvents(bob.text).at(-1)?.data.finish_reason, 'length');
    assert.equal((await check(ALICE, 'SHARED1')).json.results[0].status, 'running');
    assert.equal((await check(BOB, 'SHARED1')).json.results[0].status, 'done');
    assert.deepEqual(
      (await abort(BOB, 'SHARED1')).json,
      { success: 'false', done: 'false' },
      'Bob aborts only his own',
    );
    assert.equal((await check(ALICE, 'SHARED1')).json.results[0].status, 'running');
    assert.deepEqual((await abort(ALICE, 'SHARED1')).json, { success: 'true', done: 'true' });
    await alice.done;
  });

  test('x-kindling-generation is an unguessable server id that checks, resumes and aborts from any address', async () => {
    const body = { prompt: 'Once upon a time', max_length: 10, sampler_seed: 3, genkey: 'KCPP0007' };
    const first = await stream(ALICE, body);
    const id = first.headers['x-kindling-generation'] as string;
    assert.match(id, /^kg-[A-Za-z0-9_-]{22,}$/, '16+ random bytes, base64url');
    assert.notEqual(id, 'KCPP0007', "the header never carries the client's genkey");

    const replay = await stream(BOB, { ...body, genkey: id }, { 'Last-Event-ID': '0' });
    assert.equal(streamText(replay.text), streamText(first.text), 'the whole text, from another address');
    assert.equal(koboldEvents(replay.text).at(-1)?.data.finish_reason, 'length');
    assert.equal((await check(BOB, id)).json.results[0].text, streamText(first.text));
    const reuse = await stream(BOB, { ...body, genkey: id, prompt: 'Something else' });
    assert.equal(reuse.status, 409, 'a server id names its one generation; it never becomes the key of another');

    const live = await longStream('KCPP0008');
    const liveId = live.response.headers.get('x-kindling-generation') as string;
    assert.deepEqual((await abort(BOB, liveId)).json, { success: 'true', done: 'true' });
    await live.done;
    assert.equal(koboldEvents(live.text).at(-1)?.data.finish_reason, 'length');
    assert.equal(server.context.scheduler.find(LOCAL_PRINCIPAL, 'KCPP0008')?.stopReason, 'abort');

    // Key-less generations get a server id too, distinct per generation.
    const anonymous = await stream(ALICE, { prompt: 'Once', max_length: 2 });
    const anonymousId = anonymous.headers['x-kindling-generation'] as string;
    assert.match(anonymousId, /^kg-/);
    assert.notEqual(anonymousId, id);
  });

  test('cross-protocol replay is refused: an OpenAI stream never replays a Kobold generation', async () => {
    const kobold = await stream(ALICE, { prompt: 'Once upon', max_length: 8, sampler_seed: 21, genkey: 'KCPP5555' });
    const koboldText = streamText(kobold.text);
    const openai = (from: string, key: string) =>
      requestFrom(from, url('/v1/chat/completions'), {
        body: { messages: [{ role: 'user', content: 'Hi' }], max_tokens: 3, stream: true },
        headers: { 'X-Kindling-Stream': key, 'Last-Event-ID': '0' },
      });
    for (const from of [ALICE, BOB]) {
      const other = await openai(from, 'KCPP5555');
      assert.equal(other.status, 200, 'a finished key of another protocol: a new generation, not a replay');
      assert.doesNotMatch(other.text, /event: message/, 'no Kobold event');
      assert.match(other.text, /chat\.completion\.chunk/);
      assert.notEqual(other.headers['x-kindling-generation'], kobold.headers['x-kindling-generation']);
      assert.match(other.text, /data: \[DONE\]/);
    }
    assert.ok(koboldText.length > 0);

    const live = await longStream('KCPP5556');
    const conflict = await openai(ALICE, 'KCPP5556');
    assert.equal(conflict.status, 409, 'a live key of another protocol is a conflict, never a replay');
    assert.equal(conflict.json.error.code, 'conflict');
    assert.match(conflict.json.error.message, /KoboldAI generation/);
    // Nor through the server id.
    const byId = await openai(ALICE, live.response.headers.get('x-kindling-generation') as string);
    assert.equal(byId.status, 409);
    await abort(ALICE, 'KCPP5556');
    await live.done;
  });

  test('the key-less single-user view shows each principal only its own last generation', async () => {
    const own = await requestFrom(ALICE, url('/api/v1/generate'), { body: { prompt: 'Once', max_length: 6 } });
    const text = own.json.results[0].text as string;
    assert.equal((await requestFrom(ALICE, url('/api/extra/generate/check'))).json.results[0].text, text);
    const bobGet = (await requestFrom(BOB, url('/api/extra/generate/check'))).json.results[0];
    assert.equal(bobGet.text, '');
    assert.equal(bobGet.status, 'unknown');
    assert.equal((await check(BOB)).json.results[0].status, 'unknown');
    assert.deepEqual((await requestFrom(BOB, url('/api/extra/last_logprobs'))).json, { logprobs: null });

    const live = await longStream();
    assert.deepEqual((await abort(BOB)).json, { success: 'false', done: 'false' }, "Bob's key-less abort is his own");
    assert.equal((await requestFrom(ALICE, url('/api/extra/generate/check'))).json.results[0].status, 'running');
    assert.deepEqual((await abort(ALICE)).json, { success: 'true', done: 'true' });
    await live.done;
    assert.equal(koboldEvents(live.text).at(-1)?.data.finish_reason, 'length');
  });

  test('the WebSocket sees only its principal: aborting another client’s key does nothing', async () => {
    const live = await longStream('WSKEY1');
    const socket = new WebSocket(`${server.url.replace('http', 'ws')}/api/extra/generate/ws`, { localAddress: BOB });
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    const reply = new Promise<any>((resolve) => socket.once('message', (data) => resolve(JSON.parse(String(data)))));
    socket.send(JSON.stringify({ type: 'abort', id: 'WSKEY1' }));
    assert.deepEqual(await reply, { type: 'aborted', id: 'WSKEY1', success: false });
    socket.close();
    assert.equal((await check(ALICE, 'WSKEY1')).json.results[0].status, 'running');
    await abort(ALICE, 'WSKEY1');
    await live.done;
  });

  test('guessing keys through /check hits 429 with Retry-After after a short burst; known keys stay free', async () => {
    const GUESSER = '127.0.0.3';
    const started = Date.now();
    let answered = 0;
    let limited: Awaited<ReturnType<typeof check>> | undefined;
    for (let n = 0; n < 60; n++) {
      const response = await check(GUESSER, `KCPP${String(n).padStart(4, '0')}`);
      if (response.status === 429) limited ??= response;
      else answered++;
    }
    const seconds = (Date.now() - started) / 1000;
    assert.ok(limited, '60 guesses in a row are limited');
    assert.ok(answered <= 20 + Math.ceil(seconds * 3) + 1, `${answered} guesses answered in ${seconds} s`);
    assert.equal(limited.json.detail.type, 'rate_limited', "in Kobold's envelope");
    assert.ok(Number(limited.headers['retry-after']) >= 1);
    // At this rate the 10,000 keys of KCPP + 4 digits take about an hour, not a second.
    assert.ok((10_000 - 20) / 3 > 60 * 30);

    // Other principals are not affected, and a guesser's own known key still answers.
    assert.equal((await check(BOB, 'KCPP0000')).status, 200);
    const mine = await stream(GUESSER, { prompt: 'Once', max_length: 2, genkey: 'MINE1' });
    assert.equal(mine.status, 200);
    assert.equal((await check(GUESSER, 'MINE1')).json.results[0].status, 'done');
    // Resume guesses through the stream route spend the same budget, in the route's own envelope.
    const resumeGuess = await requestFrom(GUESSER, url('/v1/chat/completions'), {
      body: { messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2, stream: true },
      headers: { 'X-Kindling-Stream': 'KCPP9999', 'Last-Event-ID': '3' },
    });
    assert.equal(resumeGuess.status, 429);
    assert.equal(resumeGuess.json.error.code, 'rate_limited');
  });
});
