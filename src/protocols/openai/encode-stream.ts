import type { LoggedPart } from '../../core/logged-part.ts';
import type { TokenLogprob } from '../../core/stream-part.ts';
import type { WireMessage } from '../../core/wire-message.ts';
import { withPartIds } from '../common/part-event-ids.ts';
import { openaiUsage } from './encode-response.ts';
import { openaiErrorBody } from './errors.ts';
import { openaiFinishReason } from './finish-reason.ts';
import { chatLogprobs, completionLogprobs } from './logprobs.ts';
import type { OpenaiResponseMeta } from './wire.ts';

type Kind = 'chat' | 'completion';

/**
 * OpenAI SSE: `id: <n>` + one `data:` line per event, blank line after each, and `data: [DONE]` (with its
 * blank line) last. Chat sends the assistant role once (from the `start` part), then content-only deltas,
 * then an empty delta with `finish_reason`, then (when `stream_options.include_usage`) a `choices: []` chunk
 * with the real usage. Text that piled up while the reader was busy goes out as one chunk. Every event
 * carries the id of the log part it came from (see part-event-ids.ts for parts that become several events), so
 * `Last-Event-ID` resumes exactly after it.
 */
export function createOpenaiStreamEncoder(kind: Kind, meta: OpenaiResponseMeta, options: { textOffset?: number } = {}) {
  let textOffset = options.textOffset ?? 0;
  const chunk = (choices: unknown[], usage?: Record<string, unknown> | null) => {
    const body: Record<string, unknown> = {
      id: meta.id,
      object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion',
      created: meta.created,
      model: meta.model,
      system_fingerprint: meta.systemFingerprint,
      choices,
    };
    if (meta.includeUsage) body.usage = usage ?? null;
    return JSON.stringify(body);
  };
  const choice = (
    content: { role?: string; text?: string },
    logprobs: readonly TokenLogprob[] | undefined,
    finishReason: string | null,
  ) => {
    const lp = logprobs && meta.topLogprobs !== undefined ? logprobs : undefined;
    if (kind === 'chat') {
      const delta: Record<string, unknown> = {};
      if (content.role) delta.role = content.role;
      if (content.text !== undefined) delta.content = content.text;
      return {
        index: 0,
        delta,
        logprobs: lp ? chatLogprobs(lp, meta.topLogprobs ?? 0) : null,
        finish_reason: finishReason,
      };
    }
    const out = {
      text: content.text ?? '',
      index: 0,
      logprobs: lp ? completionLogprobs(lp, meta.topLogprobs ?? 0, textOffset) : null,
      finish_reason: finishReason,
    };
    textOffset += (content.text ?? '').length;
    return out;
  };

  return (batch: readonly LoggedPart[]): WireMessage[] => {
    const out: WireMessage[] = [];
    let text = '';
    let logprobs: TokenLogprob[] = [];
    let textId = 0;
    const flushText = () => {
      if (textId === 0) return;
      out.push({
        kind: 'event',
        id: String(textId),
        data: chunk([choice({ text }, logprobs.length > 0 ? logprobs : undefined, null)]),
      });
      text = '';
      logprobs = [];
      textId = 0;
    };
    for (const { id, part } of batch) {
      switch (part.type) {
        case 'queued':
          flushText();
          out.push({ kind: 'comment', text: `queued ${part.position}` });
          break;
        case 'start':
          if (kind === 'chat')
            out.push({
              kind: 'event',
              id: String(id),
              data: chunk([choice({ role: 'assistant', text: '' }, undefined, null)]),
            });
          break;
        case 'text-delta':
          text += part.text;
          if (part.logprobs) logprobs.push(...part.logprobs);
          textId = id;
          break;
        case 'finish': {
          flushText();
          const finish = chunk([
            choice(kind === 'chat' ? {} : { text: '' }, undefined, openaiFinishReason(part.reason)),
          ]);
          const usage = meta.includeUsage ? [{ kind: 'event' as const, data: chunk([], openaiUsage(part.usage)) }] : [];
          out.push(...withPartIds([{ kind: 'event', data: finish }, ...usage, { kind: 'event', data: '[DONE]' }], id));
          break;
        }
        case 'error':
          flushText();
          // The openai SDKs turn a data payload with `error` into a thrown APIError. A stream cut by shutdown
          // ends there: `[DONE]` would tell a client that only watches for it that the answer was complete.
          out.push(
            ...withPartIds(
              [
                { kind: 'event', data: JSON.stringify(openaiErrorBody(part.error)) },
                ...(part.error.code === 'shutting_down' ? [] : [{ kind: 'event' as const, data: '[DONE]' }]),
              ],
              id,
            ),
          );
          break;
      }
    }
    flushText();
    return out;
  };
}
