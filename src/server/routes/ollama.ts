import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { GenerationRequest } from '../../core/generation-request.ts';
import { KindlingError } from '../../core/kindling-error.ts';
import { servedModelId } from '../../core/model-info.ts';
import { chatTemplateSource } from '../../protocols/common/chat-template-source.ts';
import { decodeOllamaChat, decodeOllamaGenerate } from '../../protocols/ollama/decode.ts';
import { encodeOllamaLoaded, encodeOllamaResponse } from '../../protocols/ollama/encode-response.ts';
import { createOllamaStreamEncoder } from '../../protocols/ollama/encode-stream.ts';
import { formatGrammar } from '../../protocols/ollama/format-grammar.ts';
import {
  type OllamaChatBody,
  OllamaChatBody as OllamaChatSchema,
  type OllamaEmbedBody,
  OllamaEmbedBody as OllamaEmbedSchema,
  type OllamaGenerateBody,
  OllamaGenerateBody as OllamaGenerateSchema,
  type OllamaResponseMeta,
  OllamaShowBody,
} from '../../protocols/ollama/wire.ts';
import type { Generation } from '../../scheduler/generation.ts';
import { readerOutcome } from '../generation-outcome.ts';
import { promptTextOfIds } from '../long-tokenize.ts';
import { principalOf } from '../principal.ts';
import type { ServerContext } from '../server-context.ts';
import { streamGeneration } from '../stream-generation.ts';

const tags = ['Ollama'];

/**
 * The Ollama version we report. Clients gate features on it; 0.7.0 is what KoboldCpp reports, and every
 * endpoint such clients call at that level is implemented here.
 */
const OLLAMA_COMPAT_VERSION = '0.7.0';

/** Ollama's generate/chat (NDJSON as tokens arrive) and its model listing: decode → scheduler → encode. */
export function registerOllamaRoutes(app: FastifyInstance, context: ServerContext): void {
  const { scheduler, engine, config } = context;
  const model = engine.model;
  const template = chatTemplateSource(engine);
  const name = `${servedModelId(model)}:latest`;
  const bos = engine.bosToken;
  const stripBos = (ids: readonly number[]) => (bos !== undefined && ids[0] === bos ? ids.slice(1) : [...ids]);

  const run = async (
    core: GenerationRequest,
    meta: OllamaResponseMeta,
    stream: boolean,
    reply: FastifyReply,
    withContext: boolean,
    principal: string,
  ) => {
    const generation = await scheduler.submit(core, { principal, protocol: 'ollama' });
    if (withContext) meta.context = () => contextOf(generation);
    if (stream) {
      await streamGeneration(context, reply, generation, {
        afterId: 0,
        encode: createOllamaStreamEncoder(meta),
        contentType: 'application/x-ndjson',
      });
      return undefined;
    }
    const outcome = await readerOutcome(reply, generation);
    if (!outcome.ok) throw outcome.error;
    return encodeOllamaResponse(meta, outcome.text, outcome.finish);
  };
  /**
   * `/api/generate`'s `context`: the prompt's tokens (without BOS, which is added again) and the tokens of the
   * text returned. The text is tokenised again rather than taken from the log, because tokens whose bytes were
   * held back (a partial character, a trimmed stop string) are not in the log's parts.
   */
  const contextOf = (generation: Generation) => [
    ...stripBos(generation.promptTokens),
    ...engine.tokenize(generation.log.text, { special: false, addBos: false }),
  ];
  /** Nothing to generate: Ollama answers "loaded" at once (as one NDJSON line when streaming). */
  const loaded = (meta: OllamaResponseMeta, stream: boolean, reply: FastifyReply) => {
    const body = encodeOllamaLoaded(meta);
    return stream ? reply.type('application/x-ndjson; charset=utf-8').send(`${JSON.stringify(body)}\n`) : body;
  };
  const decodeOptions = (grammar: string | undefined) => ({
    defaultMaxTokens: config.defaultMaxLength,
    contextSize: model.contextSize,
    ...(grammar ? { grammar } : {}),
  });

  app.post<{ Body: OllamaGenerateBody }>(
    '/api/generate',
    {
      schema: {
        tags,
        summary: 'Generate from a prompt (stream defaults to true: NDJSON lines as tokens arrive)',
        body: OllamaGenerateSchema,
      },
    },
    async (request, reply) => {
      const body = request.body;
      const stream = body.stream !== false;
      const meta: OllamaResponseMeta = { model: name, kind: 'generate' };
      if (!body.prompt) return loaded(meta, stream, reply);
      const grammar = await formatGrammar(body.format, context.jsonSchemaToGrammar);
      let contextText: string | undefined;
      if (body.context && body.context.length > 0) {
        const bad = body.context.find((id) => id >= model.vocabularySize);
        if (bad !== undefined)
          throw KindlingError.badInput(
            'context',
            `token id ${bad} is outside the vocabulary (0..${model.vocabularySize - 1})`,
          );
        contextText = promptTextOfIds(engine, stripBos(body.context));
      }
      const core = decodeOllamaGenerate(body, template, {
        ...decodeOptions(grammar),
        ...(contextText !== undefined ? { contextText } : {}),
      });
      return run(core, meta, stream, reply, true, principalOf(request));
    },
  );

  app.post<{ Body: OllamaChatBody }>(
    '/api/chat',
    {
      schema: {
        tags,
        summary: 'Chat through the model’s template (stream defaults to true: NDJSON lines as tokens arrive)',
        body: OllamaChatSchema,
      },
    },
    async (request, reply) => {
      const body = request.body;
      const stream = body.stream !== false;
      const meta: OllamaResponseMeta = { model: name, kind: 'chat' };
      if (!body.messages || body.messages.length === 0) return loaded(meta, stream, reply);
      const grammar = await formatGrammar(body.format, context.jsonSchemaToGrammar);
      return run(
        decodeOllamaChat(body, template, decodeOptions(grammar)),
        meta,
        stream,
        reply,
        false,
        principalOf(request),
      );
    },
  );

  const modified = () => {
    try {
      return statSync(model.path).mtime;
    } catch {
      return new Date(0);
    }
  };
  const details = () => ({
    parent_model: '',
    format: 'gguf',
    family: model.architecture,
    families: [model.architecture],
    parameter_size: parameterSize(model.parameterCount),
    quantization_level: 'unknown',
  });
  // Not a content digest (hashing a multi-gigabyte file at every listing is too slow): stable per file version.
  const digest = () =>
    createHash('sha256').update(`${model.path}:${model.sizeBytes}:${modified().getTime()}`).digest('hex');
  const entry = () => ({
    name,
    model: name,
    modified_at: modified().toISOString(),
    size: model.sizeBytes,
    digest: digest(),
    details: details(),
  });

  registerOllamaEmbedRoutes(app, context);

  app.get('/api/tags', { schema: { tags, summary: 'The loaded model, as Ollama lists models' } }, async () => ({
    models: [entry()],
  }));
  app.get('/api/ps', { schema: { tags, summary: 'Models in memory (the loaded one, kept loaded)' } }, async () => ({
    models: [{ ...entry(), expires_at: '9999-12-31T23:59:59Z', size_vram: 0, context_length: model.contextSize }],
  }));
  app.get(
    '/api/version',
    { schema: { tags, summary: 'Ollama API level we implement' }, config: { auth: false } },
    async () => ({ version: OLLAMA_COMPAT_VERSION }),
  );
  app.post<{ Body: { model?: string; name?: string } }>(
    '/api/show',
    {
      schema: {
        tags,
        summary: 'Details of the loaded model (whatever name is asked for: one model is served)',
        body: OllamaShowBody,
      },
    },
    async () => ({
      license: '',
      modelfile: `FROM ${model.path}\n`,
      parameters: '',
      template: model.chatTemplate ?? '',
      details: details(),
      model_info: {
        'general.architecture': model.architecture,
        ...(model.parameterCount !== undefined ? { 'general.parameter_count': model.parameterCount } : {}),
        [`${model.architecture}.context_length`]: model.trainContextSize,
      },
      capabilities: model.canEmbed ? ['completion', 'embedding'] : ['completion'],
      modified_at: modified().toISOString(),
    }),
  );
}

/** `/api/embed` and `/api/embeddings`: vectors when the model can embed, a clear 400 otherwise. */
function registerOllamaEmbedRoutes(app: FastifyInstance, context: ServerContext): void {
  const { engine } = context;
  const model = engine.model;
  const embed = async (texts: string[]) => {
    const run = engine.embed?.bind(engine);
    if (!model.canEmbed || !run) {
      throw new KindlingError(
        'not_supported',
        `The loaded model '${servedModelId(model)}' does not provide embeddings on this server.`,
        {
          field: 'model',
        },
      );
    }
    const vectors: number[][] = [];
    for (const text of texts) vectors.push(await run(text));
    return vectors;
  };
  app.post<{ Body: OllamaEmbedBody }>(
    '/api/embed',
    { schema: { tags, summary: 'Embedding vectors (only when the loaded model can embed)', body: OllamaEmbedSchema } },
    async (request) => {
      const input = request.body.input ?? '';
      const texts = typeof input === 'string' ? [input] : input;
      const started = performance.now();
      const embeddings = await embed(texts);
      const count = texts.reduce(
        (sum, text) => sum + engine.tokenize(text, { special: false, addBos: true }).length,
        0,
      );
      const ns = Math.round((performance.now() - started) * 1e6);
      return {
        model: `${servedModelId(model)}:latest`,
        embeddings,
        total_duration: ns,
        load_duration: 0,
        prompt_eval_count: count,
      };
    },
  );
  app.post<{ Body: OllamaEmbedBody }>(
    '/api/embeddings',
    {
      schema: {
        tags,
        summary: 'One embedding vector (older endpoint; only when the loaded model can embed)',
        body: OllamaEmbedSchema,
      },
    },
    async (request) => ({ embedding: (await embed([request.body.prompt ?? '']))[0] }),
  );
}

function parameterSize(count: number | undefined): string {
  if (count === undefined) return 'unknown';
  if (count >= 1e9) return `${(count / 1e9).toFixed(1)}B`;
  if (count >= 1e6) return `${(count / 1e6).toFixed(1)}M`;
  return `${(count / 1e3).toFixed(1)}K`;
}
