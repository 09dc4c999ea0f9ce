import type { StreamPart, TokenLogprob, Usage } from '../../core/stream-part.ts';
import { openaiFinishReason } from './finish-reason.ts';
import { chatLogprobs, completionLogprobs } from './logprobs.ts';
import type { OpenaiResponseMeta } from './wire.ts';

type Finish = Extract<StreamPart, { type: 'finish' }>;

/** OpenAI's usage object from the real token counts of the generation. */
export function openaiUsage(usage: Usage): Record<string, unknown> {
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    total_tokens: usage.promptTokens + usage.completionTokens,
    prompt_tokens_details: { cached_tokens: usage.cachedPromptTokens },
  };
}

/**
 * `chat.completion`. `tool_calls: []` is kept from KoboldCpp (conformance item 69): clients written against
 * it read the field unconditionally, and OpenAI's own SDKs accept an empty list.
 */
export function encodeOpenaiChatResponse(
  meta: OpenaiResponseMeta,
  text: string,
  finish: Finish,
  logprobs: readonly TokenLogprob[],
): Record<string, unknown> {
  return {
    id: meta.id,
    object: 'chat.completion',
    created: meta.created,
    model: meta.model,
    system_fingerprint: meta.systemFingerprint,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: text, refusal: null, tool_calls: [] },
        logprobs: meta.topLogprobs === undefined ? null : chatLogprobs(logprobs, meta.topLogprobs),
        finish_reason: openaiFinishReason(finish.reason),
      },
    ],
    usage: openaiUsage(finish.usage),
  };
}

/** Legacy `text_completion`. */
export function encodeOpenaiCompletionResponse(
  meta: OpenaiResponseMeta,
  text: string,
  finish: Finish,
  logprobs: readonly TokenLogprob[],
): Record<string, unknown> {
  return {
    id: meta.id,
    object: 'text_completion',
    created: meta.created,
    model: meta.model,
    system_fingerprint: meta.systemFingerprint,
    choices: [
      {
        text,
        index: 0,
        logprobs: meta.topLogprobs === undefined ? null : completionLogprobs(logprobs, meta.topLogprobs, 0),
        finish_reason: openaiFinishReason(finish.reason),
      },
    ],
    usage: openaiUsage(finish.usage),
  };
}
