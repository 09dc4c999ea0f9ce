/** One turn of a chat, as every chat protocol (OpenAI, Anthropic, Ollama) decodes it. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/**
 * A chat rendered into a text prompt. The prompt's special-token text (e.g. `<|im_start|>`) is meant to be
 * tokenised as special tokens; `stopStrings` end the assistant's turn (the template's end-of-turn markers).
 */
export interface ChatPrompt {
  prompt: string;
  stopStrings: string[];
  /** Which template produced it: the model's own (from the GGUF) or one of our documented fallbacks. */
  template: 'model' | 'chatml' | 'instruct';
}
