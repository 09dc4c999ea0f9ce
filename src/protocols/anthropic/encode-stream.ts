import type { LoggedPart } from '../../core/logged-part.ts';
import type { WireMessage } from '../../core/wire-message.ts';
import { withPartIds } from '../common/part-event-ids.ts';
import { anthropicUsage } from './encode-response.ts';
import { anthropicErrorBody } from './errors.ts';
import { anthropicStopReason } from './stop-reason.ts';
import type { AnthropicResponseMeta } from './wire.ts';

/**
 * Anthropic's event sequence, each event `id:` + `event: <type>` + one `data:` line (the `type` inside the
 * data repeats the event name, as the SDKs expect): `message_start` (with the real input token count, sent
 * when the generation starts), `content_block_start` for the one text block, `ping`, `content_block_delta`
 * per batch of text, then `content_block_stop`, `message_delta` (stop reason, output tokens) and
 * `message_stop`. Errors are an `error` event. Queue positions are SSE comments, which the SDKs skip. Events
 * carry their log part's id (see part-event-ids.ts for parts that become several events).
 */
export function createAnthropicStreamEncoder(meta: AnthropicResponseMeta, options: { started: boolean }) {
  // A generation aborted while queued never starts; its stream still opens the message before closing it.
  let started = options.started;
  const event = (data: Record<string, unknown>) => ({
    kind: 'event' as const,
    event: String(data.type),
    data: JSON.stringify(data),
  });
  const opening = (promptTokens: number) => {
    started = true;
    return [
      event({
        type: 'message_start',
        message: {
          id: meta.id,
          type: 'message',
          role: 'assistant',
          model: meta.model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: anthropicUsage(promptTokens, 0),
        },
      }),
      event({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }),
      event({ type: 'ping' }),
    ];
  };
  return (batch: readonly LoggedPart[]): WireMessage[] => {
    const out: WireMessage[] = [];
    let text = '';
    let textId = 0;
    const flushText = () => {
      if (textId === 0) return;
      out.push({
        ...event({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }),
        id: String(textId),
      });
      text = '';
      textId = 0;
    };
    for (const { id, part } of batch) {
      switch (part.type) {
        case 'queued':
          out.push({ kind: 'comment', text: `queued ${part.position}` });
          break;
        case 'start':
          out.push(...withPartIds(opening(part.promptTokens), id));
          break;
        case 'text-delta':
          if (part.text === '') break;
          text += part.text;
          textId = id;
          break;
        case 'finish':
          flushText();
          out.push(
            ...withPartIds(
              [
                ...(started ? [] : opening(part.usage.promptTokens)),
                event({ type: 'content_block_stop', index: 0 }),
                event({
                  type: 'message_delta',
                  delta: anthropicStopReason(part.reason, part.stopString, meta.stopSequences),
                  usage: { output_tokens: part.usage.completionTokens },
                }),
                event({ type: 'message_stop' }),
              ],
              id,
            ),
          );
          break;
        case 'error':
          flushText();
          out.push({ ...event(anthropicErrorBody(part.error)), id: String(id) });
          break;
      }
    }
    flushText();
    return out;
  };
}
