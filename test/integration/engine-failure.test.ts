import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { defaultServerConfig } from '../../src/config/server-config.ts';
import { FakeEngine } from '../../src/engine/fake/fake-engine.ts';
import { Scheduler } from '../../src/scheduler/scheduler.ts';
import { createApp } from '../../src/server/app.ts';
import { deadlineSignal } from '../support/deadline.ts';
import { parseLikeLite } from '../support/lite-sse-parser.ts';
import { postJson } from '../support/test-server.ts';

/**
 * Failures a real model cannot produce on demand, through the real HTTP stack: the engine throws after a
 * few tokens. The scripted engine stands in for llama.cpp only here.
 */
describe('an engine failure mid-generation', () => {
  let app: FastifyInstance;
  let url: string;
  before(async () => {
    const engine = new FakeEngine({
      slots: 1,
      tokenDelayMs: 1,
      failAfter: { tokens: 3, message: 'the GPU went away' },
    });
    const scheduler = new Scheduler(engine, { maxQueue: 4, graceMs: 60_000, maxGenerationMs: 0, maxQueueWaitMs: 0 });
    const config = { ...defaultServerConfig(''), logLevel: 'silent' as const, heartbeatMs: 0 };
    app = await createApp({ config, engine, scheduler, version: 'test', jsonSchemaToGrammar: async () => '' });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.server.address();
    url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });
  after(async () => app.close());

  test('sync: a 500 in the Kobold envelope with the engine message, never 200 with empty text', async () => {
    const { status, body } = await postJson(`${url}/api/v1/generate`, { prompt: 'x', max_length: 10 });
    assert.equal(status, 500);
    assert.match(body.detail.msg, /the GPU went away/);
  });

  test('stream: the tokens sent so far, an error event, then a final event Lite can read', async () => {
    const response = await fetch(`${url}/api/extra/generate/stream`, {
      method: 'POST',
      body: JSON.stringify({ prompt: 'x', max_length: 10 }),
      signal: deadlineSignal(60_000, 'the failing stream to end'),
    });
    const text = await response.text();
    assert.match(
      text,
      /event: error\ndata: \{"detail":\{"msg":"Generation failed in the engine: the GPU went away","type":"model_error"/,
    );
    const { events } = parseLikeLite(text);
    const messages = events.filter((e) => e.event === 'message');
    assert.equal(messages.map((e) => e.data.token).join(''), 'xxx');
    assert.deepEqual(messages.at(-1)?.data, { token: '', finish_reason: 'error' });
    // The error part's two events have ids of their own (part-event-ids.ts), so a resume never repeats one.
    const ids = [...text.matchAll(/^id: (.+)\nevent: (\w+)$/gm)].map((m) => `${m[1]} ${m[2]}`);
    const part = Number(ids.at(-1)?.split(' ')[0]);
    assert.deepEqual(ids.slice(-2), [`${part - 1}.1 error`, `${part} message`]);
  });

  test('the server keeps serving after the failure', async () => {
    const { status } = await postJson(`${url}/api/extra/tokencount`, { prompt: 'still here' });
    assert.equal(status, 200);
  });
});
