import type { ChatMessage, ChatPrompt } from '../../core/chat-message.ts';

/**
 * The chat template used when the model brings none (no `tokenizer.chat_template` in its GGUF).
 *
 * The rule, in order:
 * 1. The model's vocabulary has ChatML's control tokens (`<|im_start|>` and `<|im_end|>` each tokenise to
 *    one special token): ChatML, as llama.cpp's server falls back to. The stop `<|im_end|>` is then matched
 *    by token id, so it never leaks into the text.
 * 2. Otherwise KoboldCpp's default adapter: system and user turns start with `\n### Instruction:\n`, the
 *    assistant's with `\n### Response:\n`, no end tags, and `### Instruction:` / `### Response:` are added
 *    to the stop strings (KoboldCpp 1.76 behaviour, so answers match what its users already get).
 *
 * A trailing assistant message is a prefill: it is left open for the model to continue.
 */
export function fallbackChatPrompt(messages: readonly ChatMessage[], options: { chatMlTokens: boolean }): ChatPrompt {
  const prefill = messages[messages.length - 1]?.role === 'assistant';
  if (options.chatMlTokens) {
    let prompt = '';
    messages.forEach((message, index) => {
      const open = prefill && index === messages.length - 1;
      prompt += `<|im_start|>${message.role}\n${message.content}${open ? '' : '<|im_end|>\n'}`;
    });
    if (!prefill) prompt += '<|im_start|>assistant\n';
    return { prompt, stopStrings: ['<|im_end|>', '<|im_start|>'], template: 'chatml' };
  }
  let prompt = '';
  for (const message of messages)
    prompt += `${message.role === 'assistant' ? INSTRUCT_RESPONSE : INSTRUCT_INSTRUCTION}${message.content}`;
  if (!prefill) prompt += INSTRUCT_RESPONSE;
  return { prompt, stopStrings: ['### Instruction:', '### Response:'], template: 'instruct' };
}

const INSTRUCT_INSTRUCTION = '\n### Instruction:\n';
const INSTRUCT_RESPONSE = '\n### Response:\n';

export interface ChatTemplateSource {
  /** The model's own template (undefined: the model has none). */
  model?: (messages: readonly ChatMessage[]) => ChatPrompt | undefined;
  /** Whether the vocabulary has ChatML's control tokens (rule 1 above). */
  chatMlTokens: boolean;
}

/** The model's template when it has one, else the fallback above. */
export function renderChatPrompt(messages: readonly ChatMessage[], source: ChatTemplateSource): ChatPrompt {
  return source.model?.(messages) ?? fallbackChatPrompt(messages, source);
}
