import type { StreamPart, Usage } from '../../core/stream-part.ts';
import { anthropicStopReason } from './stop-reason.ts';
import type { AnthropicResponseMeta } from './wire.ts';

type Finish = Extract<StreamPart, { type: 'finish' }>;

/**
 * Anthropic usage. Its cache fields count explicit prompt caching, which we do not offer (our slot prefix
 * reuse is invisible to billing-style counts), so they are 0 and `input_tokens` is the whole prompt.
 */
export function anthropicUsage(inputTokens: number, outputTokens: number): Record<string, unknown> {
  return {
    input_tokens: inputTokens,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
    output_tokens: outputTokens,
  };
}

export function encodeAnthropicMessage(
  meta: AnthropicResponseMeta,
  text: string,
  finish: Finish,
): Record<string, unknown> {
  const usage: Usage = finish.usage;
  return {
    id: meta.id,
    type: 'message',
    role: 'assistant',
    model: meta.model,
    content: [{ type: 'text', text }],
    ...anthropicStopReason(finish.reason, finish.stopString, meta.stopSequences),
    usage: anthropicUsage(usage.promptTokens, usage.completionTokens),
  };
}
