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

export interface ReasoningDelta {
  reasoning: string;
  answer: string;
  /** True once the stream is known to start with a reasoning block. */
  thinking: boolean;
}

const open = '<think>';
const close = '</think>';

/**
 * Splits a stream into reasoning and answer as it arrives, so the view can append to two text nodes instead of
 * re-parsing the whole reply each frame. Text that could still be the start of a tag is held back until the
 * next delta decides it.
 */
export class ReasoningSplitter {
  #state: 'detect' | 'thinking' | 'answer' = 'detect';
  #held = '';
  #thinking = false;
  /** After "</think>", whitespace before the answer's first character is dropped (it may come in later deltas). */
  #trimAnswer = false;

  push(delta: string): ReasoningDelta {
    let text = this.#held + delta;
    this.#held = '';
    const out: ReasoningDelta = { reasoning: '', answer: '', thinking: this.#thinking };
    if (this.#state === 'detect') {
      const lead = text.trimStart();
      if (lead.startsWith(open)) {
        this.#state = 'thinking';
        this.#thinking = out.thinking = true;
        text = lead.slice(open.length);
      } else if (open.startsWith(lead)) {
        this.#held = text;
        return out;
      } else {
        this.#state = 'answer';
      }
    }
    if (this.#state === 'thinking') {
      const end = text.indexOf(close);
      if (end === -1) {
        // Hold back a tail that may be the beginning of "</think>".
        let keep = 0;
        for (let n = Math.min(close.length - 1, text.length); n > 0; n--) {
          if (close.startsWith(text.slice(-n))) {
            keep = n;
            break;
          }
        }
        out.reasoning = text.slice(0, text.length - keep);
        this.#held = text.slice(text.length - keep);
        return out;
      }
      out.reasoning = text.slice(0, end);
      this.#state = 'answer';
      this.#trimAnswer = true;
      text = text.slice(end + close.length);
    }
    if (this.#trimAnswer) {
      text = text.replace(/^\s+/, '');
      if (text.length > 0) this.#trimAnswer = false;
    }
    out.answer = text;
    return out;
  }
}
