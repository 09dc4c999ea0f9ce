/** Detokenizes with the preceding tokens as context (leading spaces and partial characters depend on them). */
export type Detokenize = (tokens: readonly number[], context: readonly number[]) => string;

const REPLACEMENT = '\uFFFD';
/** A UTF-8 character is at most 4 bytes, so at most 4 byte-tokens can still be waiting for completion. */
const MAX_PENDING = 4;

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
    promptTail: readonly number[] = [],
  ) {
    this.context = promptTail.slice(-8);
  }

  push(token: number): string {
    this.pending.push(token);
    const text = this.detokenize(this.pending, this.context);
    if (text.endsWith(REPLACEMENT) && this.pending.length < MAX_PENDING) return '';
    return this.commit(text);
  }

  /** Emits whatever is still held (an incomplete character at the very end is dropped). */
  flush(): string {
    if (this.pending.length === 0) return '';
    return this.commit(this.detokenize(this.pending, this.context));
  }

  private commit(text: string): string {
    this.context.push(...this.pending);
    if (this.context.length > 8) this.context.splice(0, this.context.length - 8);
    this.pending = [];
    return text.replaceAll(REPLACEMENT, '');
  }
}
