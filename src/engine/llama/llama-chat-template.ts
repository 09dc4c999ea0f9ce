import {
  type ChatHistoryItem,
  JinjaTemplateChatWrapper,
  type LlamaModel,
  type LlamaText,
  SpecialToken,
  SpecialTokensText,
} from 'node-llama-cpp';
import type { ChatMessage, ChatPrompt } from '../../core/chat-message.ts';
import { KindlingError } from '../../core/kindling-error.ts';

/**
 * The model's own chat template (`tokenizer.chat_template` in the GGUF), rendered by node-llama-cpp's Jinja
 * support. The result is text whose special-token markers are tokenised as special tokens again by the
 * scheduler, so it takes the same path as every other prompt (prefix reuse, truncation, stop strings).
 */
export class LlamaChatTemplate {
  private constructor(
    private readonly model: LlamaModel,
    private readonly wrapper: JinjaTemplateChatWrapper,
  ) {}

  /** Undefined when the GGUF has no template, or one node-llama-cpp cannot load (callers fall back). */
  static fromModel(model: LlamaModel, template: string | undefined): LlamaChatTemplate | undefined {
    if (!template || template.trim() === '') return undefined;
    try {
      // Reasoning off: clients of these APIs expect the answer itself, not a hidden thought segment first.
      const wrapper = new JinjaTemplateChatWrapper({
        template,
        tokenizer: model.tokenizer,
        reasoning: false,
        trimLeadingWhitespaceInResponses: false,
      });
      return new LlamaChatTemplate(model, wrapper);
    } catch {
      return undefined;
    }
  }

  format(messages: readonly ChatMessage[]): ChatPrompt {
    const history: ChatHistoryItem[] = messages.map((message) =>
      message.role === 'assistant'
        ? { type: 'model', response: [message.content] }
        : { type: message.role, text: message.content },
    );
    // A trailing assistant message is a prefill the model continues; otherwise it starts a new turn.
    if (messages[messages.length - 1]?.role !== 'assistant') history.push({ type: 'model', response: [] });
    let state: ReturnType<JinjaTemplateChatWrapper['generateContextState']>;
    try {
      state = this.wrapper.generateContextState({ chatHistory: history });
    } catch (error) {
      throw KindlingError.badInput(
        'messages',
        `the model's chat template rejected these messages (${error instanceof Error ? error.message : error})`,
      );
    }
    const stops = (state.stopGenerationTriggers ?? [])
      .map((trigger) => this.stopText(trigger))
      .filter((stop) => stop !== '');
    return { prompt: this.text(state.contextText, true), stopStrings: [...new Set(stops)], template: 'model' };
  }

  /**
   * A stop trigger as a stop string, without trailing whitespace: templates end a turn with `<|im_end|>\n`
   * and node-llama-cpp matches that token by token, but our stop strings see text, where an unrendered
   * special token has none; the marker alone matches (by token id in the runner, or as text).
   */
  private stopText(trigger: LlamaText): string {
    const text = this.text(trigger, false);
    return text.trimEnd() || text;
  }

  /** LlamaText → prompt text. The scheduler adds BOS itself, so a leading BOS from the template is dropped. */
  private text(value: LlamaText, dropLeadingBos: boolean): string {
    let out = '';
    value.values.forEach((item, index) => {
      if (typeof item === 'string') out += item;
      else if (item instanceof SpecialTokensText) out += item.value;
      else if (item instanceof SpecialToken) {
        if (dropLeadingBos && index === 0 && item.value === 'BOS') return;
        out += this.model.detokenize(item.tokenize(this.model.tokenizer), true);
      }
    });
    return out;
  }
}
