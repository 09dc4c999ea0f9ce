import type { GenerationRequest } from '../../core/generation-request.ts';
import type { GenerationView } from '../../core/generation-view.ts';
import { servedModelId } from '../../core/model-info.ts';
import { type GenerationPlan, generationRoute, type ProtocolRoute } from '../../core/protocol.ts';
import type { ProtocolServices } from '../../core/protocol-services.ts';
import { chatTemplateSource } from '../common/chat-template-source.ts';
import { derivedId, factDigest } from '../common/derived-id.ts';
import { streamKey } from '../common/stream-key.ts';
import { checkTokenIds } from '../common/token-ids.ts';
import { decodeOpenaiChat, decodeOpenaiCompletion, promptIds } from './decode.ts';
import { encodeOpenaiChatResponse, encodeOpenaiCompletionResponse } from './encode-response.ts';
import { createOpenaiStreamEncoder } from './encode-stream.ts';
import { responseFormatGrammar } from './response-format.ts';
import {
  type OpenaiChatBody,
  OpenaiChatBody as OpenaiChatSchema,
  type OpenaiCompletionBody,
  OpenaiCompletionBody as OpenaiCompletionSchema,
  type OpenaiResponseMeta,
} from './wire.ts';

type Kind = 'chat' | 'completion';
interface Options {
  stream: boolean;
  intervalMs: number | undefined;
  includeUsage: boolean;
  topLogprobs: number | undefined;
  model: string | undefined;
}

/** OpenAI's chat and legacy completions, streamed (SSE ending in `[DONE]`, resumable) or answered whole. */
export function openaiGenerateRoutes(services: ProtocolServices): ProtocolRoute[] {
  const { model } = services;
  const template = chatTemplateSource(services);
  const systemFingerprint = `fp_${factDigest(`${services.version}:${model.name}:${model.sizeBytes}`, 10)}`;
  const modelId = servedModelId(model);
  const grammarOf = (format: OpenaiChatBody['response_format']) =>
    responseFormatGrammar(format, (schema) => services.jsonSchemaToGrammar(schema));

  /** Ids derive from the generation's server id, so a resumed stream repeats the id its first connection saw. */
  const meta = (generation: GenerationView, kind: Kind, options: Options, includeUsage: boolean) =>
    ({
      id: derivedId(kind === 'chat' ? 'chatcmpl-' : 'cmpl-', generation.id),
      created: Math.floor(generation.createdAt / 1000),
      model: modelId,
      systemFingerprint,
      includeUsage,
      ...(options.topLogprobs !== undefined ? { topLogprobs: options.topLogprobs } : {}),
    }) satisfies OpenaiResponseMeta;

  const plan = (kind: Kind, request: GenerationRequest, options: Options): GenerationPlan => {
    const protocol = kind === 'chat' ? 'openai-chat' : 'openai-completion';
    if (!options.stream) {
      return {
        request,
        protocol,
        model: options.model,
        respond: ({ text, finish, logprobs }, generation) => {
          const m = meta(generation, kind, options, false);
          return kind === 'chat'
            ? encodeOpenaiChatResponse(m, text, finish, logprobs)
            : encodeOpenaiCompletionResponse(m, text, finish, logprobs);
        },
      };
    }
    return {
      request,
      protocol,
      model: options.model,
      stream: {
        resumable: true,
        intervalMs: options.intervalMs,
        encoder: (generation, afterId) => {
          // A resumed completion's logprob offsets count the text its client already has.
          let textOffset = 0;
          for (const { id, part } of generation.log.partsAfter(0))
            if (id <= afterId && part.type === 'text-delta') textOffset += part.text.length;
          const encoder = createOpenaiStreamEncoder(kind, meta(generation, kind, options, options.includeUsage), {
            textOffset,
          });
          return encoder;
        },
      },
    };
  };

  return [
    generationRoute<OpenaiChatBody>({
      paths: ['/v1/chat/completions'],
      summary: 'Chat completion (stream: SSE ending in data: [DONE]; resumable with X-Kindling-Stream + Last-Event-ID)',
      body: OpenaiChatSchema,
      plan: async ({ body, headers }) => {
        const stream = body.stream === true;
        const grammar = await grammarOf(body.response_format);
        const key = stream ? streamKey(headers) : undefined;
        const request = decodeOpenaiChat(body, template, {
          defaultMaxTokens: services.defaultMaxLength,
          ...(grammar ? { grammar } : {}),
          ...(key ? { key } : {}),
        });
        const topLogprobs = body.logprobs ? (body.top_logprobs ?? 0) : undefined;
        return plan('chat', request, {
          stream,
          intervalMs: body.stream_interval_ms,
          includeUsage: body.stream_options?.include_usage === true,
          topLogprobs,
          model: body.model,
        });
      },
    }),
    generationRoute<OpenaiCompletionBody>({
      paths: ['/v1/completions'],
      summary: 'Text completion of a raw prompt (stream: SSE ending in data: [DONE])',
      body: OpenaiCompletionSchema,
      plan: async ({ body, headers }) => {
        const stream = body.stream === true;
        const grammar = await grammarOf(body.response_format);
        const key = stream ? streamKey(headers) : undefined;
        const ids = promptIds(body.prompt);
        if (ids) checkTokenIds('prompt', ids, model.vocabularySize);
        const idsText = ids ? await services.promptTextOfIds(ids) : undefined;
        const request = decodeOpenaiCompletion(body, idsText, {
          defaultMaxTokens: services.defaultMaxLength,
          ...(grammar ? { grammar } : {}),
          ...(key ? { key } : {}),
        });
        const topLogprobs = body.logprobs ?? undefined;
        return plan('completion', request, {
          stream,
          intervalMs: body.stream_interval_ms,
          includeUsage: body.stream_options?.include_usage === true,
          topLogprobs,
          model: body.model,
        });
      },
    }),
  ];
}
