import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { GenerationRequest } from '../../core/generation-request.ts';
import { KindlingError } from '../../core/kindling-error.ts';
import { servedModelId } from '../../core/model-info.ts';
import { chatTemplateSource } from '../../protocols/common/chat-template-source.ts';
import { streamKey } from '../../protocols/common/stream-key.ts';
import { decodeOpenaiChat, decodeOpenaiCompletion } from '../../protocols/openai/decode.ts';
import { encodeOpenaiChatResponse, encodeOpenaiCompletionResponse } from '../../protocols/openai/encode-response.ts';
import { createOpenaiStreamEncoder } from '../../protocols/openai/encode-stream.ts';
import { responseFormatGrammar } from '../../protocols/openai/response-format.ts';
import {
  type OpenaiChatBody,
  OpenaiChatBody as OpenaiChatSchema,
  type OpenaiCompletionBody,
  OpenaiCompletionBody as OpenaiCompletionSchema,
  type OpenaiEmbeddingsBody,
  OpenaiEmbeddingsBody as OpenaiEmbeddingsSchema,
  type OpenaiResponseMeta,
} from '../../protocols/openai/wire.ts';
import type { Generation } from '../../scheduler/generation.ts';
import { readerOutcome } from '../generation-outcome.ts';
import { promptTextOfIds } from '../long-tokenize.ts';
import { principalOf } from '../principal.ts';
import type { ServerContext } from '../server-context.ts';
import { lastEventId, streamGeneration } from '../stream-generation.ts';
import { submitOrResume } from '../submit-or-resume.ts';

const tags = ['OpenAI'];

/** OpenAI's chat and legacy completions, models and embeddings: decode → scheduler → encode. */
export function registerOpenaiRoutes(app: FastifyInstance, context: ServerContext): void {
  const { scheduler, engine, config } = context;
  const model = engine.model;
  const template = chatTemplateSource(engine);
  const systemFingerprint = `fp_${createHash('sha256').update(`${context.version}:${model.name}:${model.sizeBytes}`).digest('hex').slice(0, 10)}`;
  const startedAt = Math.floor(Date.now() / 1000);
  const modelId = servedModelId(model);

  /** Ids derive from the generation's server id, so a resumed stream repeats the id its first connection saw. */
  const meta = (
    generation: Generation,
    prefix: string,
    includeUsage: boolean,
    topLogprobs: number | undefined,
  ): OpenaiResponseMeta => ({
    id: `${prefix}-${createHash('sha256').update(generation.id).digest('base64url').slice(0, 24)}`,
    created: Math.floor(generation.createdAt / 1000),
    model: modelId,
    systemFingerprint,
    includeUsage,
    ...(topLogprobs !== undefined ? { topLogprobs } : {}),
  });

  type Kind = 'chat' | 'completion';
  const respond = async (
    kind: Kind,
    core: GenerationRequest,
    options: {
      stream: boolean;
      includeUsage: boolean;
      topLogprobs?: number;
      headers: Record<string, string | string[] | undefined>;
    },
    reply: Parameters<typeof streamGeneration>[1],
    principal: string,
  ) => {
    const prefix = kind === 'chat' ? 'chatcmpl' : 'cmpl';
    const origin = { principal, protocol: kind === 'chat' ? 'openai-chat' : 'openai-completion' };
    if (options.stream) {
      const target = await submitOrResume(scheduler, core, lastEventId(options.headers['last-event-id']), origin);
      const textOffset = target.generation.log
        .partsAfter(0)
        .filter(({ id, part }) => id <= target.afterId && part.type === 'text-delta')
        .reduce((sum, { part }) => sum + (part.type === 'text-delta' ? part.text.length : 0), 0);
      const encode = createOpenaiStreamEncoder(
        kind,
        meta(target.generation, prefix, options.includeUsage, options.topLogprobs),
        { textOffset },
      );
      await streamGeneration(context, reply, target.generation, { afterId: target.afterId, encode });
      return undefined;
    }
    const generation = await scheduler.submit(core, origin);
    const outcome = await readerOutcome(reply, generation);
    if (!outcome.ok) throw outcome.error;
    const m = meta(generation, prefix, false, options.topLogprobs);
    return kind === 'chat'
      ? encodeOpenaiChatResponse(m, outcome.text, outcome.finish, outcome.logprobs)
      : encodeOpenaiCompletionResponse(m, outcome.text, outcome.finish, outcome.logprobs);
  };

  app.post<{ Body: OpenaiChatBody }>(
    '/v1/chat/completions',
    {
      schema: {
        tags,
        summary:
          'Chat completion (stream: SSE ending in data: [DONE]; resumable with X-Kindling-Stream + Last-Event-ID)',
        body: OpenaiChatSchema,
      },
    },
    async (request, reply) => {
      const body = request.body;
      const stream = body.stream === true;
      const grammar = await responseFormatGrammar(body.response_format, context.jsonSchemaToGrammar);
      const key = stream ? streamKey(request.headers) : undefined;
      const core = decodeOpenaiChat(body, template, {
        defaultMaxTokens: config.defaultMaxLength,
        ...(grammar ? { grammar } : {}),
        ...(key ? { key } : {}),
      });
      const topLogprobs = body.logprobs ? (body.top_logprobs ?? 0) : undefined;
      return respond(
        'chat',
        core,
        { stream, includeUsage: body.stream_options?.include_usage === true, topLogprobs, headers: request.headers },
        reply,
        principalOf(request),
      );
    },
  );

  app.post<{ Body: OpenaiCompletionBody }>(
    '/v1/completions',
    {
      schema: {
        tags,
        summary: 'Text completion of a raw prompt (stream: SSE ending in data: [DONE])',
        body: OpenaiCompletionSchema,
      },
    },
    async (request, reply) => {
      const body = request.body;
      const stream = body.stream === true;
      const grammar = await responseFormatGrammar(body.response_format, context.jsonSchemaToGrammar);
      const key = stream ? streamKey(request.headers) : undefined;
      const detokenize = (ids: number[]) => {
        const bad = ids.find((id) => id >= model.vocabularySize);
        if (bad !== undefined)
          throw KindlingError.badInput(
            'prompt',
            `token id ${bad} is outside the vocabulary (0..${model.vocabularySize - 1})`,
          );
        return promptTextOfIds(engine, ids);
      };
      const core = decodeOpenaiCompletion(body, detokenize, {
        defaultMaxTokens: config.defaultMaxLength,
        ...(grammar ? { grammar } : {}),
        ...(key ? { key } : {}),
      });
      const topLogprobs = body.logprobs ?? undefined;
      return respond(
        'completion',
        core,
        { stream, includeUsage: body.stream_options?.include_usage === true, topLogprobs, headers: request.headers },
        reply,
        principalOf(request),
      );
    },
  );

  const modelEntry = () => ({ id: modelId, object: 'model', created: startedAt, owned_by: 'kindling' });
  app.get('/v1/models', { schema: { tags, summary: 'The loaded model' } }, async () => ({
    object: 'list',
    data: [modelEntry()],
  }));
  // The id has a slash (`koboldcpp/<name>`), so the route takes the rest of the path; the bare name still works.
  app.get<{ Params: { '*': string } }>(
    '/v1/models/*',
    { schema: { tags, summary: 'One model by id' } },
    async (request) => {
      const id = request.params['*'];
      if (id !== modelId && id !== model.name)
        throw new KindlingError('not_found', `The model '${id}' does not exist; this server serves '${modelId}'.`, {
          field: 'model',
        });
      return modelEntry();
    },
  );

  app.post<{ Body: OpenaiEmbeddingsBody }>(
    '/v1/embeddings',
    {
      schema: {
        tags,
        summary: 'Embedding vectors (only when the loaded model can embed)',
        body: OpenaiEmbeddingsSchema,
      },
    },
    async (request) => {
      const embed = engine.embed?.bind(engine);
      if (!model.canEmbed || !embed) {
        throw new KindlingError(
          'not_supported',
          `The loaded model '${modelId}' does not provide embeddings on this server.`,
          { field: 'model' },
        );
      }
      const inputs = typeof request.body.input === 'string' ? [request.body.input] : request.body.input;
      let promptTokens = 0;
      const data = [];
      for (const [index, input] of inputs.entries()) {
        // Embedding first: it refuses a text longer than the context before anything tokenizes all of it.
        const vector = await embed(input);
        promptTokens += engine.tokenize(input, { special: false, addBos: true }).length;
        const embedding =
          request.body.encoding_format === 'base64'
            ? Buffer.from(new Float32Array(vector).buffer).toString('base64')
            : vector;
        data.push({ object: 'embedding', index, embedding });
      }
      return {
        object: 'list',
        data,
        model: modelId,
        usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
      };
    },
  );
}
