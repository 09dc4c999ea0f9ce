import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { servedModelId } from '../../core/model-info.ts';
import { anthropicChatMessages, decodeAnthropicMessages } from '../../protocols/anthropic/decode.ts';
import { encodeAnthropicMessage } from '../../protocols/anthropic/encode-response.ts';
import { createAnthropicStreamEncoder } from '../../protocols/anthropic/encode-stream.ts';
import {
  type AnthropicCountTokensBody,
  AnthropicCountTokensBody as AnthropicCountTokensSchema,
  type AnthropicMessagesBody,
  AnthropicMessagesBody as AnthropicMessagesSchema,
  type AnthropicResponseMeta,
} from '../../protocols/anthropic/wire.ts';
import { chatTemplateSource } from '../../protocols/common/chat-template-source.ts';
import { renderChatPrompt } from '../../protocols/common/fallback-chat-template.ts';
import { normalizeStopSequences } from '../../protocols/common/stop-sequences.ts';
import { streamKey } from '../../protocols/common/stream-key.ts';
import type { Generation } from '../../scheduler/generation.ts';
import { readerOutcome } from '../generation-outcome.ts';
import { tokenizeForReply } from '../long-tokenize.ts';
import { principalOf } from '../principal.ts';
import type { ServerContext } from '../server-context.ts';
import { lastEventId, streamGeneration } from '../stream-generation.ts';
import { submitOrResume } from '../submit-or-resume.ts';

const tags = ['Anthropic'];

/** Anthropic's Messages API (auth by `x-api-key` or Bearer, handled globally): decode → scheduler → encode. */
export function registerAnthropicRoutes(app: FastifyInstance, context: ServerContext): void {
  const { scheduler, engine } = context;
  const template = chatTemplateSource(engine);

  /** The id derives from the generation's server id, so a resumed stream repeats the id its first connection saw. */
  const meta = (generation: Generation, body: AnthropicMessagesBody): AnthropicResponseMeta => ({
    id: `msg_${createHash('sha256').update(generation.id).digest('base64url').slice(0, 24)}`,
    model: servedModelId(engine.model),
    stopSequences: normalizeStopSequences(body.stop_sequences, 'stop_sequences'),
  });

  app.post<{ Body: AnthropicMessagesBody }>(
    '/v1/messages',
    {
      schema: {
        tags,
        summary:
          'Create a message (stream: message_start … message_stop; resumable with X-Kindling-Stream + Last-Event-ID)',
        body: AnthropicMessagesSchema,
      },
    },
    async (request, reply) => {
      const body = request.body;
      const origin = { principal: principalOf(request), protocol: 'anthropic' };
      if (body.stream === true) {
        const key = streamKey(request.headers);
        const core = decodeAnthropicMessages(body, template, key ? { key } : {});
        const target = await submitOrResume(scheduler, core, lastEventId(request.headers['last-event-id']), origin);
        const started = target.generation.log
          .partsAfter(0)
          .some(({ id, part }) => id <= target.afterId && part.type === 'start');
        const encode = createAnthropicStreamEncoder(meta(target.generation, body), { started });
        await streamGeneration(context, reply, target.generation, { afterId: target.afterId, encode });
        return undefined;
      }
      const generation = await scheduler.submit(decodeAnthropicMessages(body, template, {}), origin);
      const outcome = await readerOutcome(reply, generation);
      if (!outcome.ok) throw outcome.error;
      return encodeAnthropicMessage(meta(generation, body), outcome.text, outcome.finish);
    },
  );

  app.post<{ Body: AnthropicCountTokensBody }>(
    '/v1/messages/count_tokens',
    {
      schema: {
        tags,
        summary: 'Tokens the messages take as a prompt (rendered with the chat template, BOS included)',
        body: AnthropicCountTokensSchema,
      },
    },
    async (request, reply) => {
      const chat = renderChatPrompt(anthropicChatMessages(request.body), template);
      const tokens = await tokenizeForReply(engine, reply, chat.prompt, { special: true, addBos: true });
      return { input_tokens: tokens.count };
    },
  );
}
