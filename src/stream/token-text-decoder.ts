import type { TokenText } from './phrase-ban-buffer.ts';

/** Detokenizes with the preceding tokens as context (leading spaces and partial characters depend on them). */
export type Detokenize = (tokens: readonly number[], context: readonly number[]) => string;

const REPLACEMENT = '\uFFFD';
/** A UTF-8 character is at most 4 bytes, so at most 4 byte-tokens can still be waiting for completion. */
const MAX_PENDING = 4;
const CONTEXT = 8;

/**
 * Turns tokens into text without ever splitting a UTF-8 character: tokens whose bytes end inside a
 * character are held until the character completes. Bytes that can never form a character are dropped
 * (as KoboldCpp does), so no U+FFFD reaches a client.
 */
export class TokenTextDecoder {
  private pending: number[] = [];
  private readonly context: number[];

  constructor(
    private readonly detokenize: Detokenize,
    precedingTokens: readonly number[] = [],
  ) {
    this.context = precedingTokens.slice(-CONTEXT);
  }

  /** The text of the tokens completed by this one (with those tokens), or undefined while a character is incomplete. */
  push(token: number): TokenText | undefined {
    this.pending.push(token);
    const text = this.detokenize(this.pending, this.context);
    if (text.endsWith(REPLACEMENT) && this.pending.length < MAX_PENDING) return undefined;
    return this.commit(text);
  }

  /** Whatever is still held (an incomplete character at the very end is dropped). */
  flush(): TokenText | undefined {
    if (this.pending.length === 0) return undefined;
    return this.commit(this.detokenize(this.pending, this.context));
  }

  private commit(text: string): TokenText {
    const tokens = this.pending;
    this.context.push(...tokens);
    if (this.context.length > CONTEXT) this.context.splice(0, this.context.length - CONTEXT);
    this.pending = [];
    return { tokens, text: text.replaceAll(REPLACEMENT, '') };
  }
}
