import type { GenerationView } from '../../core/generation-view.ts';
import { servedModelId } from '../../core/model-info.ts';
import { generationRoute, infoRoute, type ProtocolDescriptor } from '../../core/protocol.ts';
import type { ProtocolServices } from '../../core/protocol-services.ts';
import { chatTemplateSource } from '../common/chat-template-source.ts';
import { derivedId } from '../common/derived-id.ts';
import { renderChatPrompt } from '../common/fallback-chat-template.ts';
import { normalizeStopSequences } from '../common/stop-sequences.ts';
import { streamKey } from '../common/stream-key.ts';
import { anthropicChatMessages, decodeAnthropicMessages } from './decode.ts';
import { encodeAnthropicMessage } from './encode-response.ts';
import { createAnthropicStreamEncoder } from './encode-stream.ts';
import { anthropicErrorBody } from './errors.ts';
import {
  type AnthropicCountTokensBody,
  AnthropicCountTokensBody as AnthropicCountTokensSchema,
  type AnthropicMessagesBody,
  AnthropicMessagesBody as AnthropicMessagesSchema,
  type AnthropicResponseMeta,
} from './wire.ts';

const PROTOCOL = 'anthropic';

/** Anthropic's Messages API (the key comes as `x-api-key` or Bearer, checked by the server for every route). */
export const anthropicProtocol: ProtocolDescriptor = {
  name: PROTOCOL,
  tag: 'Anthropic',
  pathPrefixes: ['/v1/messages'],
  errorBody: (error) => anthropicErrorBody(error),
  routes: (services) => anthropicRoutes(services),
};

function anthropicRoutes(services: ProtocolServices) {
  const template = chatTemplateSource(services);
  /** The id derives from the generation's server id, so a resumed stream repeats the id its first connection saw. */
  const meta = (generation: GenerationView, body: AnthropicMessagesBody): AnthropicResponseMeta => ({
    id: derivedId('msg_', generation.id),
    model: servedModelId(services.model),
    stopSequences: normalizeStopSequences(body.stop_sequences, 'stop_sequences'),
  });
  return [
    generationRoute<AnthropicMessagesBody>({
      paths: ['/v1/messages'],
      summary:
        'Create a message (stream: message_start … message_stop; resumable with X-Kindling-Stream + Last-Event-ID)',
      body: AnthropicMessagesSchema,
      plan: ({ body, headers }) => {
        if (body.stream !== true) {
          return {
            request: decodeAnthropicMessages(body, template, {}),
            protocol: PROTOCOL,
            model: body.model,
            respond: ({ text, finish }, generation) => encodeAnthropicMessage(meta(generation, body), text, finish),
          };
        }
        const key = streamKey(headers);
        return {
          request: decodeAnthropicMessages(body, template, key ? { key } : {}),
          protocol: PROTOCOL,
          model: body.model,
          stream: {
            resumable: true,
            encoder: (generation, afterId) => {
              // A resumed stream whose client saw `message_start` must not get it again.
              const started = generation.log
                .partsAfter(0)
                .some(({ id, part }) => id <= afterId && part.type === 'start');
              return createAnthropicStreamEncoder(meta(generation, body), { started });
            },
          },
        };
      },
    }),
    infoRoute<AnthropicCountTokensBody>({
      method: 'POST',
      paths: ['/v1/messages/count_tokens'],
      summary: 'Tokens the messages take as a prompt (rendered with the chat template, BOS included)',
      body: AnthropicCountTokensSchema,
      handle: async ({ body, clientGone }) => {
        const chat = renderChatPrompt(anthropicChatMessages(body), template);
        const tokens = await services.countTokens(chat.prompt, { special: true, addBos: true }, clientGone);
        return { input_tokens: tokens.count };
      },
    }),
  ];
}
