import type { FastifyInstance, FastifyReply } from 'fastify';
import { KindlingError } from '../../core/kindling-error.ts';
import { decodeKoboldGenerate } from '../../protocols/kobold/decode.ts';
import { encodeKoboldLogprobs, encodeKoboldResult } from '../../protocols/kobold/encode-response.ts';
import { encodeKoboldStream } from '../../protocols/kobold/encode-stream.ts';
import { koboldFinishReason } from '../../protocols/kobold/finish-reason.ts';
import {
  DetokenizeBody,
  GenkeyBody,
  type KoboldGenerateBody,
  KoboldGenerateBody as KoboldGenerateSchema,
  TokenCountBody,
} from '../../protocols/kobold/wire.ts';
import type { Generation } from '../../scheduler/generation.ts';
import { onClientGone } from '../client-gone.ts';
import { generationLogprobs, generationOutcome } from '../generation-outcome.ts';
import { sendWithIds, tokenizeForReply } from '../long-tokenize.ts';
import type { ServerContext } from '../server-context.ts';
import { lastEventId, streamGeneration } from '../stream-generation.ts';
import { submitOrResume } from '../submit-or-resume.ts';
import { registerKoboldInfoRoutes } from './kobold-info.ts';

const tags = ['KoboldAI'];

/** The KoboldAI / KoboldCpp text-generation API: decode → scheduler → encode, nothing else. */
export function registerKoboldRoutes(app: FastifyInstance, context: ServerContext): void {
  const { scheduler, engine, config } = context;
  const defaults = { maxLength: config.defaultMaxLength };
  registerKoboldInfoRoutes(app, context);

  for (const url of ['/api/v1/generate', '/api/latest/generate']) {
    app.post<{ Body: KoboldGenerateBody }>(
      url,
      { schema: { tags, summary: 'Generate text (waits for the whole result)', body: KoboldGenerateSchema } },
      async (request, reply) => {
        const generation = scheduler.submit(decodeKoboldGenerate(request.body, defaults));
        const stop = onClientGone(reply, () => generation.request.abortOnDisconnect && generation.abort('disconnect'));
        const outcome = await generationOutcome(generation);
        stop();
        if (!outcome.ok) throw outcome.error;
        return encodeKoboldResult(
          outcome.text,
          outcome.finish,
          generation.request.logprobs ? outcome.logprobs : undefined,
        );
      },
    );
  }

  app.post<{ Body: KoboldGenerateBody }>(
    '/api/extra/generate/stream',
    {
      schema: {
        tags,
        summary: 'Generate text as Server-Sent Events (resumable with genkey + Last-Event-ID)',
        body: KoboldGenerateSchema,
      },
    },
    async (request, reply) => {
      const target = submitOrResume(
        scheduler,
        decodeKoboldGenerate(request.body, defaults),
        lastEventId(request.headers['last-event-id']),
      );
      await streamGeneration(context, reply, target.generation, {
        afterId: target.afterId,
        encode: encodeKoboldStream,
      });
    },
  );

  /** KoboldCpp's `{"results":[{"text"}]}` plus what a client needs to switch between polling and streaming. */
  const checkBody = (generation: Generation | undefined) => {
    if (!generation)
      return { results: [{ text: '', status: 'unknown', last_event_id: '0', queue_position: 0, finish_reason: null }] };
    const reason = generation.stopReason;
    return {
      results: [
        {
          text: generation.log.text,
          status: generation.status,
          last_event_id: String(generation.log.lastId),
          queue_position: scheduler.positionOf(generation),
          finish_reason: reason ? koboldFinishReason(reason) : null,
        },
      ],
    };
  };
  /** Kobold's "single-user view": without a key, only a key-less last generation with an empty queue is visible. */
  const keyless = () => {
    const last = scheduler.last;
    return last && !last.clientKey && scheduler.queueLength === 0 ? last : undefined;
  };
  const byKey = (key: unknown) => (typeof key === 'string' && key !== '' ? scheduler.find(key) : keyless());

  app.get(
    '/api/extra/generate/check',
    { schema: { tags, summary: 'Text generated so far by the last key-less generation' } },
    async () => checkBody(keyless()),
  );
  app.post<{ Body: { genkey?: string } }>(
    '/api/extra/generate/check',
    {
      schema: {
        tags,
        summary: 'Text generated so far, status and last event id of a generation by genkey',
        body: GenkeyBody,
      },
      config: { lenientBody: true },
    },
    async (request) => checkBody(byKey(request.body?.genkey)),
  );

  app.post<{ Body: { genkey?: string } }>(
    '/api/extra/abort',
    {
      schema: {
        tags,
        summary: 'Abort a generation by genkey (without a key: the last key-less one, when none is queued)',
        body: GenkeyBody,
      },
      config: { lenientBody: true },
    },
    async (request) => {
      const key = request.body?.genkey;
      const done = scheduler.abort(typeof key === 'string' && key !== '' ? key : undefined);
      return { success: done ? 'true' : 'false', done: done ? 'true' : 'false' };
    },
  );

  const tokenize = async (request: { body: { prompt: string; special?: boolean } }, reply: FastifyReply) => {
    const special = request.body.special ?? true;
    const ids = await tokenizeForReply(engine, reply, request.body.prompt, { special, addBos: special });
    return sendWithIds(reply, { value: ids.count }, ids);
  };
  for (const url of ['/api/extra/tokencount', '/api/extra/tokenize']) {
    app.post<{ Body: { prompt: string; special?: boolean } }>(
      url,
      { schema: { tags, summary: 'Count and list the tokens of a text', body: TokenCountBody } },
      tokenize,
    );
  }

  app.post<{ Body: { ids: number[]; special?: boolean } }>(
    '/api/extra/detokenize',
    { schema: { tags, summary: 'Token ids back to text', body: DetokenizeBody } },
    async (request) => {
      const vocab = engine.model.vocabularySize;
      const bad = request.body.ids.find((id) => id >= vocab);
      if (bad !== undefined)
        throw KindlingError.badInput('ids', `token id ${bad} is outside the vocabulary (0..${vocab - 1})`);
      return { result: engine.detokenize(request.body.ids, { special: request.body.special ?? true }), success: true };
    },
  );

  const lastLogprobs = (key: unknown) => {
    const generation = byKey(key);
    return { logprobs: generation?.request.logprobs ? encodeKoboldLogprobs(generationLogprobs(generation)) : null };
  };
  app.get(
    '/api/extra/last_logprobs',
    { schema: { tags, summary: 'Logprobs of the last key-less generation' } },
    async () => lastLogprobs(undefined),
  );
  app.post<{ Body: { genkey?: string } }>(
    '/api/extra/last_logprobs',
    {
      schema: { tags, summary: 'Logprobs of a generation by genkey (requested with logprobs: true)', body: GenkeyBody },
      config: { lenientBody: true },
    },
    async (request) => lastLogprobs(request.body?.genkey),
  );

  app.post<{ Body: Record<string, unknown> }>(
    '/api/extra/json_to_grammar',
    { schema: { tags, summary: 'Convert a JSON schema to a GBNF grammar' } },
    async (request) => {
      const body = request.body ?? {};
      const schema = 'schema' in body ? body.schema : body;
      if (!schema || typeof schema !== 'object')
        throw KindlingError.badInput('schema', 'expected a JSON schema object');
      return { result: await context.jsonSchemaToGrammar(schema), success: true };
    },
  );
}
