import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import type { RunningServer } from '../../src/main.ts';
import { parseLikeLite } from '../support/lite-sse-parser.ts';
import { rawRequest } from '../support/raw-http.ts';
import { banEndTokens, postJson, startTestServer } from '../support/test-server.ts';

/** `stream_interval_ms`: the client's pace. The same text arrives, in fewer, larger events. */
describe('a client-chosen stream pace (real server, real model)', () => {
  let server: RunningServer;
  let bans: Record<string, number>;
  before(async () => {
    server = await startTestServer({ contextSize: 1024 });
    bans = banEndTokens(server);
  });
  after(async () => server.close());

  const kobold = (extra: Record<string, unknown>) => ({
    prompt: 'Once upon a time',
    max_length: 80,
    sampler_seed: 5,
    logit_bias: bans,
    ...extra,
  });

  test('Kobold SSE: the same text in far fewer events, and the stream still ends with its final event', async () => {
    const free = await rawRequest(server.url, { method: 'POST', path: '/api/extra/generate/stream', body: kobold({}) });
    const started = performance.now();
    const paced = await rawRequest(server.url, {
      method: 'POST',
      path: '/api/extra/generate/stream',
      body: kobold({ stream_interval_ms: 150 }),
    });
    const ms = performance.now() - started;
    const text = (stream: string) =>
      parseLikeLite(stream)
        .events.map((e) => e.data.token ?? '')
        .join('');
    const freeEvents = parseLikeLite(free.text).events;
    const pacedEvents = parseLikeLite(paced.text).events;
    assert.equal(text(paced.text), text(free.text));
    assert.equal(pacedEvents.at(-1)?.data.finish_reason, 'length');
    // At most one event per 150 ms, plus the final one and the first (sent at once).
    assert.ok(pacedEvents.length <= Math.ceil(ms / 150) + 2, `${pacedEvents.length} events in ${Math.round(ms)} ms`);
    assert.ok(pacedEvents.length < freeEvents.length, `${pacedEvents.length} paced against ${freeEvents.length}`);
  });

  test('OpenAI SSE takes the same field; a pace past the limit is a 400 naming it', async () => {
    const paced = await rawRequest(server.url, {
      method: 'POST',
      path: '/v1/completions',
      body: { prompt: 'Once upon a time', max_tokens: 40, stream: true, stream_interval_ms: 100, seed: 1 },
    });
    assert.equal(paced.status, 200);
    assert.match(paced.text, /data: \[DONE\]\n\n$/);
    const bad = await postJson(`${server.url}/api/extra/generate/stream`, kobold({ stream_interval_ms: 60_000 }));
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(bad.body), /stream_interval_ms/);
  });

  test('the WebSocket takes ?stream_interval_ms= for the whole connection', async () => {
    const count = async (query: string) => {
      const socket = new WebSocket(`${server.url.replace('http', 'ws')}/api/extra/generate/ws${query}`);
      await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
      let tokens = 0;
      let text = '';
      const ended = new Promise<void>((resolve) => {
        socket.on('message', (data) => {
          const message = JSON.parse(String(data));
          if (message.type === 'token') {
            tokens++;
            text += message.text;
          }
          if (message.type === 'end' || message.type === 'error') resolve();
        });
      });
      socket.send(JSON.stringify({ type: 'start', id: `ws-pace${query.length}`, request: kobold({}) }));
      await ended;
      socket.close();
      return { tokens, text };
    };
    const free = await count('');
    const paced = await count('?stream_interval_ms=150');
    assert.equal(paced.text, free.text);
    assert.ok(paced.tokens < free.tokens, `${paced.tokens} paced messages against ${free.tokens}`);
  });
});
