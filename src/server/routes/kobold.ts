import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { KindlingError } from '../../core/kindling-error.ts';
import { SAMPLING_LIMITS } from '../../core/sampling-limits.ts';
import { withSchemaGrammar } from '../../protocols/common/grammar-field.ts';
import { jsonSchemaGrammar } from '../../protocols/common/json-schema-check.ts';
import { clientKey } from '../../protocols/common/stream-key.ts';
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
import { generationLogprobs, readerOutcome } from '../generation-outcome.ts';
import { sendWithIds, tokenizeForReply } from '../long-tokenize.ts';
import { lookupLimiter } from '../lookup-rate-limit.ts';
import { principalOf } from '../principal.ts';
import type { ServerContext } from '../server-context.ts';
import { lastEventId, streamGeneration } from '../stream-generation.ts';
import { submitOrResume } from '../submit-or-resume.ts';
import { registerKoboldInfoRoutes } from './kobold-info.ts';

const tags = ['KoboldAI'];
/** The protocol Kobold's HTTP and WebSocket routes record on their generations (one encoder family). */
export const KOBOLD_PROTOCOL = 'kobold';

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
        const body = await withSchemaGrammar(request.body, context.jsonSchemaToGrammar);
        const generation = await scheduler.submit(decodeKoboldGenerate(body, defaults), {
          principal: principalOf(request),
          protocol: KOBOLD_PROTOCOL,
        });
        const outcome = await readerOutcome(reply, generation);
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
      const body = await withSchemaGrammar(request.body, context.jsonSchemaToGrammar);
      const target = await submitOrResume(
        scheduler,
        decodeKoboldGenerate(body, defaults),
        lastEventId(request.headers['last-event-id']),
        { principal: principalOf(request), protocol: KOBOLD_PROTOCOL },
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
  /**
   * The generation a Kobold key names for this caller: its own genkey or a server id; without a key, the
   * caller's own last key-less generation (KoboldCpp's single-user view, per principal). A key that names
   * nothing this caller can reach spends a token of its lookup rate limit (429 past the burst).
   */
  const lookup = (request: FastifyRequest, raw: unknown): Generation | undefined => {
    const principal = principalOf(request);
    const key = clientKey('genkey', raw);
    if (key === undefined) return scheduler.lastOf(principal);
    const generation = scheduler.find(principal, key);
    if (!generation) lookupLimiter(scheduler).miss(principal);
    return generation;
  };
  const check = (request: FastifyRequest, key: unknown) => {
    const generation = lookup(request, key);
    generation?.touch();
    return checkBody(generation);
  };

  app.get(
    '/api/extra/generate/check',
    { schema: { tags, summary: 'Text generated so far by your last key-less generation' } },
    async (request) => check(request, undefined),
  );
  app.post<{ Body: { genkey?: string } }>(
    '/api/extra/generate/check',
    {
      schema: {
        tags,
        summary: 'Text generated so far, status and last event id of one of your generations by genkey',
        body: GenkeyBody,
      },
      config: { lenientBody: true },
    },
    async (request) => check(request, request.body?.genkey),
  );

  app.post<{ Body: { genkey?: string } }>(
    '/api/extra/abort',
    {
      schema: {
        tags,
        summary: 'Abort one of your generations by genkey (without a key: your last key-less one, while it runs)',
        body: GenkeyBody,
      },
      config: { lenientBody: true },
    },
    async (request) => {
      const principal = principalOf(request);
      const named = clientKey('genkey', request.body?.genkey);
      if (named && !scheduler.find(principal, named)) lookupLimiter(scheduler).miss(principal);
      const done = scheduler.abort(principal, named);
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
    {
      schema: { tags, summary: 'Token ids back to text', body: DetokenizeBody },
      // Millions of numbers cost JSON.parse ~0.4 s for 31 MB (a string of that size costs a tenth of it); the most
      // ids this route takes fit in a few MB, so a bigger body is refused before it is parsed.
      bodyLimit: Math.min(config.maxBodyBytes, SAMPLING_LIMITS.tokenIds * 8 + 65536),
    },
    async (request) => {
      const vocab = engine.model.vocabularySize;
      const bad = request.body.ids.find((id) => id >= vocab);
      if (bad !== undefined)
        throw KindlingError.badInput('ids', `token id ${bad} is outside the vocabulary (0..${vocab - 1})`);
      return { result: engine.detokenize(request.body.ids, { special: request.body.special ?? true }), success: true };
    },
  );

  const lastLogprobs = (request: FastifyRequest, key: unknown) => {
    const generation = lookup(request, key);
    return { logprobs: generation?.request.logprobs ? encodeKoboldLogprobs(generationLogprobs(generation)) : null };
  };
  app.get(
    '/api/extra/last_logprobs',
    { schema: { tags, summary: 'Logprobs of your last key-less generation' } },
    async (request) => lastLogprobs(request, undefined),
  );
  app.post<{ Body: { genkey?: string } }>(
    '/api/extra/last_logprobs',
    {
      schema: { tags, summary: 'Logprobs of a generation by genkey (requested with logprobs: true)', body: GenkeyBody },
      config: { lenientBody: true },
    },
    async (request) => lastLogprobs(request, request.body?.genkey),
  );

  app.post<{ Body: unknown }>(
    '/api/extra/json_to_grammar',
    { schema: { tags, summary: 'Convert a JSON schema to a GBNF grammar' } },
    async (request) => {
      // KoboldCpp takes {"schema": …} or the bare schema; a body that is not an object (123, "s", true, null, [])
      // is a 400 from the schema check, not a TypeError from `in`.
      const body: unknown = request.body;
      const schema =
        typeof body === 'object' && body !== null && !Array.isArray(body) && 'schema' in body
          ? (body as { schema: unknown }).schema
          : body;
      return { result: await jsonSchemaGrammar(schema, 'schema', context.jsonSchemaToGrammar), success: true };
    },
  );
}
