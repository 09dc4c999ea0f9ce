import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { defaultServerConfig } from '../../src/config/server-config.ts';
import { FakeEngine } from '../../src/engine/fake/fake-engine.ts';
import type { Generation } from '../../src/scheduler/generation.ts';
import { Scheduler } from '../../src/scheduler/scheduler.ts';
import { createApp } from '../../src/server/app.ts';
import { readerOutcome } from '../../src/server/generation-outcome.ts';
import type { ServerContext } from '../../src/server/server-context.ts';
import { streamGeneration } from '../../src/server/stream-generation.ts';
import { generationRequest } from '../support/generation-request.ts';

const request = (key?: string) => generationRequest('x', { maxTokens: 100_000, ...(key ? { key } : {}) });

/**
 * A throw inside a hijacked stream handler (the head, an encoder, a send) is past Fastify's reach: the handler
 * itself must end the response and stop a generation nobody can come back for. Left open, the client waited
 * forever, the generation ran on unseen, and the server's close waited for that connection.
 */
describe('a failure after the stream handler took the reply over', () => {
  let app: FastifyInstance;
  let url: string;
  let scheduler: Scheduler;
  const generations: Generation[] = [];
  before(async () => {
    const engine = new FakeEngine({ slots: 2, tokenDelayMs: 2 });
    scheduler = new Scheduler(engine, { maxQueue: 4, graceMs: 60_000, maxGenerationMs: 0, maxQueueWaitMs: 0 });
    const config = { ...defaultServerConfig(''), logLevel: 'silent' as const, heartbeatMs: 0 };
    const context: ServerContext = { config, engine, scheduler, version: 'test', jsonSchemaToGrammar: async () => '' };
    const submit = async (key?: string) => {
      const generation = await scheduler.submit(request(key));
      generations.push(generation);
      return generation;
    };
    app = await createApp(context);
    // Routes of the test's own, beside the protocols' (a hijacked handler is what the pipeline runs).
    {
      const instance = app;
      {
        let batches = 0;
        instance.post('/test/encoder-throws', async (_request, reply) => {
          await streamGeneration(context, reply, await submit(), {
            afterId: 0,
            encode: (batch) => {
              if (++batches > 3) throw new Error('encoder bug');
              return batch.map(({ id }) => ({ kind: 'event' as const, id: String(id), data: '{}' }));
            },
          });
        });
        // The stream's head cannot be written (once: the error response after it can).
        const failHeadOnce = (reply: FastifyReply, value: string) => {
          const writeHead = reply.raw.writeHead.bind(reply.raw);
          reply.raw.writeHead = (() => {
            reply.raw.writeHead = writeHead;
            throw new TypeError(`Invalid character in header content ["x-bad"]: ${JSON.stringify(value)}`);
          }) as unknown as typeof writeHead;
        };
        instance.post('/test/head-throws', async (_request, reply) => {
          failHeadOnce(reply, 'a\nb');
          await streamGeneration(context, reply, await submit(), { afterId: 0, encode: () => [] });
        });
        // The client leaves while the request is still being prepared (before anything listens to its socket).
        const goneFirst = async (socket: { destroyed: boolean }) => {
          const deadline = Date.now() + 5000;
          while (!socket.destroyed && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
        };
        instance.post('/test/gone-before-stream', async (request, reply) => {
          await goneFirst(request.raw.socket);
          await streamGeneration(context, reply, await submit(), { afterId: 0, encode: () => [] });
        });
        instance.post('/test/gone-before-wait', async (request, reply) => {
          await goneFirst(request.raw.socket);
          const outcome = await readerOutcome(reply, await submit());
          return { ok: outcome.ok };
        });
        instance.post('/v1/test/head-throws-named', async (_request, reply) => {
          failHeadOnce(reply, '日本\r\n');
          await streamGeneration(context, reply, await submit('named-key'), { afterId: 0, encode: () => [] });
        });
      }
    }
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.server.address();
    url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });
  after(async () => {
    await scheduler.drain();
    await app.close();
  });

  const stopped = async (generation: Generation | undefined) => {
    const deadline = Date.now() + 3000;
    while (!generation?.log.ended && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    return generation?.log.ended === true;
  };

  test('an encoder that throws mid-stream: the body is cut (the client sees a failed response), the generation stops', async () => {
    const response = await fetch(`${url}/test/encoder-throws`, { method: 'POST', signal: AbortSignal.timeout(5000) });
    assert.equal(response.status, 200, 'the head went out before the encoder failed');
    await assert.rejects(response.text(), /terminated|aborted|other side closed/i);
    const generation = generations.at(-1);
    assert.ok(await stopped(generation), 'the anonymous generation was aborted');
    assert.equal(generation?.abortCause, 'disconnect');
  });

  test('a head that cannot be written: a 500 in the protocol envelope, the anonymous generation stops', async () => {
    const response = await fetch(`${url}/test/head-throws`, { method: 'POST', signal: AbortSignal.timeout(5000) });
    assert.equal(response.status, 500);
    const body = (await response.json()) as { detail: { msg: string; type: string } };
    assert.equal(body.detail.type, 'internal');
    assert.match(body.detail.msg, /header/i);
    assert.ok(await stopped(generations.at(-1)));
  });

  test('the same with a named generation: the 500 comes in the OpenAI envelope; the generation stays resumable', async () => {
    const response = await fetch(`${url}/v1/test/head-throws-named`, {
      method: 'POST',
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(response.status, 500);
    const body = (await response.json()) as { error: { code: string } };
    assert.equal(body.error.code, 'internal');
    const generation = generations.at(-1);
    assert.equal(generation?.log.ended, false, 'a named generation is not the response’s to stop');
    generation?.abort('client');
    assert.ok(await stopped(generation));
  });

  for (const path of ['/test/gone-before-stream', '/test/gone-before-wait']) {
    test(`a client gone before ${path.endsWith('stream') ? 'its stream began' : 'its sync wait began'}: the anonymous generation stops`, async () => {
      const before = generations.length;
      // node:http without an agent: fetch's pool opens a fresh connection after an abort, which would hold the
      // server's close below until its header timeout.
      const client = httpRequest(`${url}${path}`, { method: 'POST', agent: false });
      client.on('error', () => {});
      client.end('{}');
      await new Promise((resolve) => setTimeout(resolve, 100));
      client.destroy();
      const deadline = Date.now() + 3000;
      while (generations.length === before && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 10));
      const generation = generations.at(-1);
      assert.ok(generations.length > before, 'the route submitted after the client left');
      assert.ok(await stopped(generation), 'nobody reads it, so it was aborted');
      assert.equal(generation?.abortCause, 'disconnect');
    });
  }

  test('with those failures behind it the server closes at once', async () => {
    const started = Date.now();
    await scheduler.drain();
    await app.close();
    assert.ok(Date.now() - started < 2000, `close took ${Date.now() - started} ms`);
  });
});
