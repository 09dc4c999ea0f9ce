import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../../src/main.ts';
import { withDeadline } from '../support/deadline.ts';
import { parseLikeLite } from '../support/lite-sse-parser.ts';
import { openStream } from '../support/sse-capture.ts';
import { getJson, postJson, startTestServer } from '../support/test-server.ts';

const tokens = (stream: string) =>
  parseLikeLite(stream)
    .events.map((e) => e.data.token)
    .join('');
const finalReason = (stream: string) => parseLikeLite(stream).events.at(-1)?.data.finish_reason;

describe('POST /api/extra/generate/stream (real server, real model)', () => {
  let server: RunningServer;
  let url: string;
  before(async () => {
    server = await startTestServer({ contextSize: 2048, parallel: 2 });
    url = `${server.url}/api/extra/generate/stream`;
  });
  after(async () => server.close());

  test('framing: SSE headers, then id / event: message / one data line / blank line, readable by Lite', async () => {
    const stream = await openStream(url, {
      prompt: 'Once upon a time',
      max_length: 12,
      ban_eos_token: true,
      sampler_seed: 4,
    });
    assert.equal(stream.response.status, 200);
    assert.match(stream.response.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.equal(stream.response.headers.get('cache-control'), 'no-cache');
    await withDeadline(stream.done, 30_000, 'the stream stream to end');
    const frames = stream.text.split('\n\n').filter(Boolean);
    let lastId = 0;
    for (const frame of frames) {
      const lines = frame.split('\n');
      assert.equal(lines.length, 3, frame);
      const id = Number(lines[0]?.replace(/^id: /, ''));
      assert.ok(id > lastId, 'ids increase');
      lastId = id;
      assert.equal(lines[1], 'event: message');
      assert.match(lines[2] ?? '', /^data: \{"token": .*, "finish_reason": .*\}$/);
    }
    const { events, rest } = parseLikeLite(stream.text);
    assert.equal(rest, '');
    assert.ok(events.length >= 2);
    for (const event of events.slice(0, -1)) assert.equal(event.data.finish_reason, null);
    assert.deepEqual(events.at(-1)?.data, { token: '', finish_reason: 'length' });
    for (const event of events) assert.deepEqual(Object.keys(event.data), ['token', 'finish_reason']);
  });

  test('the streamed text equals the sync text for the same seed, one event per token', async () => {
    const body = { prompt: 'The little fox', max_length: 24, ban_eos_token: true, sampler_seed: 11, temperature: 1 };
    const stream = await openStream(url, body);
    await withDeadline(stream.done, 30_000, 'the stream stream to end');
    const sync = await postJson(`${server.url}/api/v1/generate`, body);
    assert.equal(tokens(stream.text), sync.body.results[0].text);
    assert.ok(parseLikeLite(stream.text).events.length > 5);
  });

  test('a stop string split across tokens never leaks, not even its start', async () => {
    const body = {
      prompt: 'x',
      max_length: 40,
      grammar: 'root ::= "Hello World\\nUser: hi there"',
      stop_sequence: ['\nUser:'],
      trim_stop: true,
    };
    const stream = await openStream(url, body);
    await withDeadline(stream.done, 30_000, 'the stream stream to end');
    const events = parseLikeLite(stream.text).events;
    assert.equal(tokens(stream.text), 'Hello World');
    assert.ok(events.length >= 3, 'streamed token by token');
    assert.equal(finalReason(stream.text), 'stop');
    for (const event of events) assert.ok(!event.data.token.includes('\n'), JSON.stringify(event.data.token));
  });

  test('multi-byte UTF-8 is never split: no U+FFFD, exact text', async () => {
    const target = 'café 日本語 🔥 über ñ';
    const body = { prompt: 'x', max_length: 60, grammar: `root ::= ${JSON.stringify(target)}` };
    const stream = await openStream(url, body);
    await withDeadline(stream.done, 30_000, 'the stream stream to end');
    const events = parseLikeLite(stream.text).events;
    for (const event of events) assert.ok(!event.data.token.includes('\uFFFD'));
    assert.equal(tokens(stream.text), target);
    assert.ok(stream.text.includes('\\ud83d\\udd25'), 'non-ASCII is escaped like Python json.dumps');
    const sync = await postJson(`${server.url}/api/v1/generate`, body);
    assert.equal(sync.body.results[0].text, target);
  });

  test('abort mid-stream: the stream ends with a final "length" event and the slot is free again', async () => {
    const stream = await openStream(url, { prompt: 'x', max_length: 2000, ban_eos_token: true, genkey: 'ABORT1' });
    await stream.until((text) => parseLikeLite(text).events.length >= 2);
    const abort = await postJson(`${server.url}/api/extra/abort`, { genkey: 'ABORT1' });
    assert.deepEqual(abort.body, { success: 'true', done: 'true' });
    await withDeadline(stream.done, 30_000, 'the stream stream to end');
    const events = parseLikeLite(stream.text).events;
    assert.deepEqual(events.at(-1)?.data, { token: '', finish_reason: 'length' });
    const perf = (await getJson(`${server.url}/api/extra/perf`)).body;
    assert.equal(perf.slots_busy, 0);
    assert.ok(perf.last_token_count < 2000);
  });

  test('a client that disconnects mid-stream aborts its (anonymous) generation at once', async () => {
    const controller = new AbortController();
    const stream = await openStream(url, { prompt: 'x', max_length: 2000, ban_eos_token: true }, {}, controller.signal);
    await stream.until((text) => parseLikeLite(text).events.length >= 2);
    controller.abort();
    const started = Date.now();
    for (;;) {
      const perf = (await getJson(`${server.url}/api/extra/perf`)).body;
      if (perf.slots_busy === 0) {
        assert.ok(perf.last_token_count < 2000, `generated ${perf.last_token_count}`);
        break;
      }
      assert.ok(Date.now() - started < 2000, 'slot freed within 2 s');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  });

  test('resume: the same genkey with Last-Event-ID replays what was missed, then continues live', async () => {
    const body = { prompt: 'x', max_length: 300, ban_eos_token: true, sampler_seed: 5, genkey: 'RESUME1' };
    const first = await openStream(url, body);
    await first.until((text) => parseLikeLite(text).events.length >= 5);
    await first.cancel();
    const seen = parseLikeLite(first.text).events;
    const lastId = [...first.text.matchAll(/^id: (\d+)$/gm)].map((m) => m[1]).at(seen.length - 1) as string;
    const conflict = await postJson(url, body);
    assert.ok(conflict.status === 409 || conflict.status === 200, `status ${conflict.status}`);
    const second = await openStream(url, body, { 'last-event-id': lastId });
    await withDeadline(second.done, 30_000, 'the second stream to end');
    const resumed = parseLikeLite(second.text).events;
    const full = seen.map((e) => e.data.token).join('') + resumed.map((e) => e.data.token).join('');
    const check = await postJson(`${server.url}/api/extra/generate/check`, { genkey: 'RESUME1' });
    assert.equal(check.body.results[0].status, 'done');
    assert.equal(full, check.body.results[0].text);
    assert.equal(resumed.at(-1)?.data.finish_reason, 'length');
  });

  test('a live genkey with a different request and no Last-Event-ID is a 409, not a second generation', async () => {
    const body = { prompt: 'x', max_length: 2000, ban_eos_token: true, genkey: 'DUP1' };
    const first = await openStream(url, body);
    await first.until((text) => parseLikeLite(text).events.length >= 1);
    // The same body would be the same request re-sent after a cut, and reattach (resume-edges.test.ts).
    const again = await postJson(url, { ...body, prompt: 'y' });
    assert.equal(again.status, 409);
    assert.equal(again.body.detail.type, 'conflict');
    await postJson(`${server.url}/api/extra/abort`, { genkey: 'DUP1' });
    await withDeadline(first.done, 30_000, 'the first stream to end');
  });

  test('busy and bad-input errors come back as JSON, not SSE', async () => {
    const bad = await postJson(url, { max_length: 'x' });
    assert.equal(bad.status, 400);
    assert.match(bad.headers.get('content-type') ?? '', /application\/json/);
  });
});
