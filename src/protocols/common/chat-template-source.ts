import type { ChatMessage, ChatPrompt } from '../../core/chat-message.ts';
import type { ChatTemplateSource } from './fallback-chat-template.ts';

/** What a chat template needs from the engine (structural, so protocols stay free of engine imports). */
export interface ChatTemplateEngine {
  tokenize(text: string, options: { special: boolean; addBos: boolean }): number[];
  formatChat?(messages: readonly ChatMessage[]): ChatPrompt | undefined;
}

/** The model's template plus the facts the fallback rule needs, computed once per server. */
export function chatTemplateSource(engine: ChatTemplateEngine): ChatTemplateSource {
  const single = (marker: string) => engine.tokenize(marker, { special: true, addBos: false }).length === 1;
  const source: ChatTemplateSource = { chatMlTokens: single('<|im_start|>') && single('<|im_end|>') };
  if (engine.formatChat) source.model = (messages) => engine.formatChat?.(messages);
  return source;
}
