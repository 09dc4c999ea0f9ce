import type { StreamPart, TokenLogprob } from '../../core/stream-part.ts';
import { koboldFinishReason } from './finish-reason.ts';

type Finish = Extract<StreamPart, { type: 'finish' }>;

/** `/api/v1/generate` result: KoboldCpp's shape plus the real token counts newer KoboldCpp adds. */
export function encodeKoboldResult(
  text: string,
  finish: Finish,
  logprobs?: readonly TokenLogprob[],
): Record<string, unknown> {
  const result: Record<string, unknown> = {
    text,
    finish_reason: koboldFinishReason(finish.reason),
    prompt_tokens: finish.usage.promptTokens,
    completion_tokens: finish.usage.completionTokens,
  };
  if (logprobs) result.logprobs = encodeKoboldLogprobs(logprobs);
  return { results: [result] };
}

/** KoboldCpp's hybrid of OpenAI chat and legacy completion logprobs (`/api/extra/last_logprobs`). */
export function encodeKoboldLogprobs(logprobs: readonly TokenLogprob[]): Record<string, unknown> {
  const bytes = (s: string) => [...new TextEncoder().encode(s)];
  let offset = 0;
  const textOffset: number[] = [];
  for (const entry of logprobs) {
    textOffset.push(offset);
    offset += entry.token.length;
  }
  return {
    content: logprobs.map((entry) => ({
      token: entry.token,
      token_id: entry.tokenId,
      logprob: entry.logprob,
      bytes: bytes(entry.token),
      top_logprobs: entry.top.map((t) => ({ token: t.token, logprob: t.logprob, bytes: bytes(t.token) })),
    })),
    tokens: logprobs.map((e) => e.token),
    token_ids: logprobs.map((e) => e.tokenId),
    token_logprobs: logprobs.map((e) => e.logprob),
    top_logprobs: logprobs.map((e) => Object.fromEntries(e.top.map((t) => [t.token, t.logprob]))),
    text_offset: textOffset,
  };
}
