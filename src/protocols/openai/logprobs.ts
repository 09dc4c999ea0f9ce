import type { TokenLogprob } from '../../core/stream-part.ts';

const bytes = (text: string) => [...new TextEncoder().encode(text)];

/** Chat logprobs: `{content: [{token, logprob, bytes, top_logprobs}], refusal: null}`. */
export function chatLogprobs(entries: readonly TokenLogprob[], top: number): Record<string, unknown> {
  return {
    content: entries.map((entry) => ({
      token: entry.token,
      logprob: finite(entry.logprob),
      bytes: bytes(entry.token),
      top_logprobs: entry.top
        .slice(0, top)
        .map((t) => ({ token: t.token, logprob: finite(t.logprob), bytes: bytes(t.token) })),
    })),
    refusal: null,
  };
}

/** Legacy completions logprobs: parallel arrays, `text_offset` counted from the start of the generated text. */
export function completionLogprobs(
  entries: readonly TokenLogprob[],
  top: number,
  startOffset: number,
): Record<string, unknown> {
  let offset = startOffset;
  const textOffset = entries.map((entry) => {
    const at = offset;
    offset += entry.token.length;
    return at;
  });
  return {
    tokens: entries.map((e) => e.token),
    token_logprobs: entries.map((e) => finite(e.logprob)),
    top_logprobs: entries.map((e) => Object.fromEntries(e.top.slice(0, top).map((t) => [t.token, finite(t.logprob)]))),
    text_offset: textOffset,
  };
}

/** JSON has no -Infinity; OpenAI reports impossible tokens as -9999. */
function finite(logprob: number): number {
  return Number.isFinite(logprob) ? logprob : -9999;
}
