import type { ChatMessage } from '../../core/chat-message.ts';
import type { GenerationRequest } from '../../core/generation-request.ts';
import { KindlingError } from '../../core/kindling-error.ts';
import { type ChatTemplateSource, renderChatPrompt } from '../common/fallback-chat-template.ts';
import { decodeSampling } from '../common/sampler-table.ts';
import { normalizeStopSequences } from '../common/stop-sequences.ts';
import type { AnthropicCountTokensBody, AnthropicMessagesBody } from './wire.ts';

/** `system` + `messages` → our chat messages; anything but text is a 400 naming the block. */
export function anthropicChatMessages(body: AnthropicCountTokensBody): ChatMessage[] {
  if (Array.isArray(body.tools) && body.tools.length > 0)
    throw new KindlingError('not_supported', 'tools: tool use is not supported by this server.', { field: 'tools' });
  const out: ChatMessage[] = [];
  if (body.system !== undefined && body.system !== null) {
    const system = textOf(body.system, 'system');
    if (system !== '') out.push({ role: 'system', content: system });
  }
  for (const [i, message] of body.messages.entries()) {
    out.push({ role: message.role, content: textOf(message.content, `messages[${i}].content`) });
  }
  return out;
}

/** `/v1/messages` → the core request. */
export function decodeAnthropicMessages(
  body: AnthropicMessagesBody,
  template: ChatTemplateSource,
  options: { key?: string },
): GenerationRequest {
  const chat = renderChatPrompt(anthropicChatMessages(body), template);
  // temperature, top_p and top_k are the shared table's own names; Kobold extensions (min_p, rep_pen, grammar…) work too.
  const sampling = decodeSampling(body);
  return {
    prompt: chat.prompt,
    memory: '',
    maxTokens: body.max_tokens,
    parseSpecialTokens: true,
    stopStrings: [...new Set([...normalizeStopSequences(body.stop_sequences, 'stop_sequences'), ...chat.stopStrings])],
    trimStop: true,
    banEos: false,
    bypassEos: false,
    renderSpecial: false,
    sampling,
    logprobs: 0,
    ...(options.key ? { key: options.key } : {}),
    abortOnDisconnect: options.key === undefined,
  };
}

function textOf(content: unknown, field: string): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw KindlingError.badInput(field, 'expected a string or a list of content blocks');
  return content
    .map((block: unknown, j) => {
      const typed = block as { type?: unknown; text?: unknown } | null;
      if (typed?.type === 'text' && typeof typed.text === 'string') return typed.text;
      if (typeof typed?.type !== 'string')
        throw KindlingError.badInput(`${field}[${j}]`, 'expected a content block with a "type"');
      throw new KindlingError(
        'not_supported',
        `${field}[${j}]: "${typed.type}" blocks are not supported (text only).`,
        { field: `${field}[${j}]` },
      );
    })
    .join('\n');
}
