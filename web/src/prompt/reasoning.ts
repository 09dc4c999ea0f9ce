// Reasoning models (DeepSeek R1, Qwen3, QwQ…) write their chain of thought between <think> tags before the
// answer. The view folds it away, and the prompt leaves it out of earlier replies: it costs context and models
// are trained to see only final answers in the history.

export interface SplitReasoning {
  reasoning: string | undefined;
  answer: string;
  /** The block was opened but not closed yet (still streaming, or cut off). */
  open: boolean;
}

const openTag = /^\s*<think>/;

export function splitReasoning(text: string): SplitReasoning {
  const start = openTag.exec(text);
  if (start === null) return { reasoning: undefined, answer: text, open: false };
  const rest = text.slice(start[0].length);
  const end = rest.indexOf('</think>');
  if (end === -1) return { reasoning: rest.trim(), answer: '', open: true };
  return {
    reasoning: rest.slice(0, end).trim(),
    answer: rest.slice(end + '</think>'.length).replace(/^\s+/, ''),
    open: false,
  };
}

export function stripReasoning(text: string): string {
  const split = splitReasoning(text);
  return split.reasoning === undefined ? text : split.answer;
}
