import { Answer } from '../../core/answer.ts';
import type { GenerationRequest } from '../../core/generation-request.ts';
import type { GenerationView } from '../../core/generation-view.ts';
import { servedModelId } from '../../core/model-info.ts';
import { type GenerationPlan, generationRoute, type ProtocolRoute } from '../../core/protocol.ts';
import type { ProtocolServices } from '../../core/protocol-services.ts';
import { chatTemplateSource } from '../common/chat-template-source.ts';
import { checkTokenIds } from '../common/token-ids.ts';
import { decodeOllamaChat, decodeOllamaGenerate } from './decode.ts';
import { encodeOllamaLoaded, encodeOllamaResponse } from './encode-response.ts';
import { createOllamaStreamEncoder } from './encode-stream.ts';
import { formatGrammar } from './format-grammar.ts';
import {
  type OllamaChatBody,
  OllamaChatBody as OllamaChatSchema,
  type OllamaGenerateBody,
  OllamaGenerateBody as OllamaGenerateSchema,
  type OllamaResponseMeta,
} from './wire.ts';

const PROTOCOL = 'ollama';

/** Over an upstream tokenizer the answer is not tokenized again: its parts' ids (those the upstream reported). */
function answerIds(generation: GenerationView): number[] {
  return generation.log.partsAfter(0).flatMap(({ part }) => (part.type === 'text-delta' ? part.tokens : []));
}

/** Ollama's generate and chat: NDJSON lines as tokens arrive (`stream` defaults to true), or one object. */
export function ollamaGenerateRoutes(services: ProtocolServices): ProtocolRoute[] {
  const { model } = services;
  const template = chatTemplateSource(services);
  const name = `${servedModelId(model)}:latest`;
  const bos = services.bosToken;
  const stripBos = (ids: readonly number[]) => (bos !== undefined && ids[0] === bos ? ids.slice(1) : [...ids]);
  /**
   * `/api/generate`'s `context`: the prompt's tokens (without BOS, which is added again) and the tokens of the
   * text returned. The text is tokenised again rather than taken from the log, because tokens whose bytes were
   * held back (a partial character, a trimmed stop string) are not in the log's parts.
   */
  const contextOf = (generation: GenerationView) => [
    ...stripBos(generation.promptTokens),
    ...(services.remoteTokens
      ? answerIds(generation)
      : services.tokenize(generation.log.text, { special: false, addBos: false })),
  ];
  const grammarOf = (format: OllamaGenerateBody['format']) =>
    formatGrammar(format, (schema) => services.jsonSchemaToGrammar(schema));
  const decodeOptions = (grammar: string | undefined) => ({
    defaultMaxTokens: services.defaultMaxLength,
    contextSize: model.contextSize,
    ...(grammar ? { grammar } : {}),
  });
  /** Each response's meta is its own: `context` is bound to its generation once that exists. */
  const plan = (
    request: GenerationRequest,
    kind: OllamaResponseMeta['kind'],
    stream: boolean,
    requested: string | undefined,
  ): GenerationPlan => {
    const meta = (generation: GenerationView): OllamaResponseMeta => ({
      model: name,
      kind,
      ...(kind === 'generate' ? { context: () => contextOf(generation) } : {}),
    });
    if (stream) {
      return {
        request,
        protocol: PROTOCOL,
        model: requested,
        stream: {
          contentType: 'application/x-ndjson',
          resumable: false,
          encoder: (generation) => createOllamaStreamEncoder(meta(generation)),
        },
      };
    }
    return {
      request,
      protocol: PROTOCOL,
      model: requested,
      respond: ({ text, finish }, generation) => encodeOllamaResponse(meta(generation), text, finish),
    };
  };
  /** Nothing to generate: Ollama answers "loaded" at once (as one NDJSON line when streaming). */
  const loaded = (kind: OllamaResponseMeta['kind'], stream: boolean) => {
    const body = encodeOllamaLoaded({ model: name, kind });
    return stream ? Answer.text(`${JSON.stringify(body)}\n`, 'application/x-ndjson; charset=utf-8') : Answer.json(body);
  };

  return [
    generationRoute<OllamaGenerateBody>({
      paths: ['/api/generate'],
      summary: 'Generate from a prompt (stream defaults to true: NDJSON lines as tokens arrive)',
      body: OllamaGenerateSchema,
      plan: async ({ body }) => {
        const stream = body.stream !== false;
        if (!body.prompt) return loaded('generate', stream);
        const grammar = await grammarOf(body.format);
        let contextText: string | undefined;
        if (body.context && body.context.length > 0) {
          checkTokenIds('context', body.context, model.vocabularySize);
          contextText = await services.promptTextOfIds(stripBos(body.context));
        }
        const request = decodeOllamaGenerate(body, template, {
          ...decodeOptions(grammar),
          ...(contextText !== undefined ? { contextText } : {}),
        });
        return plan(request, 'generate', stream, body.model);
      },
    }),
    generationRoute<OllamaChatBody>({
      paths: ['/api/chat'],
      summary: 'Chat through the model’s template (stream defaults to true: NDJSON lines as tokens arrive)',
      body: OllamaChatSchema,
      plan: async ({ body }) => {
        const stream = body.stream !== false;
        if (!body.messages || body.messages.length === 0) return loaded('chat', stream);
        const grammar = await grammarOf(body.format);
        return plan(decodeOllamaChat(body, template, decodeOptions(grammar)), 'chat', stream, body.model);
      },
    }),
  ];
}
