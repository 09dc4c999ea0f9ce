import type { NativeKvCache } from './native-context.ts';

/** Tokens a shifted prompt must share, in a row, with the cache before we trust the alignment. */
const SHIFT_PROBE = 16;

/**
 * What one slot's llama.cpp sequence holds: `tokens[i]` is in the KV cache at position i. Edits go to the
 * cache and the list together; they must run between batches (BatchLoop.exclusive).
 */
export class SlotCache {
  readonly tokens: number[] = [];

  constructor(
    readonly id: number,
    private readonly kv: NativeKvCache,
  ) {}

  /** Records tokens the batch loop decoded into this sequence. */
  append(tokens: readonly number[]): void {
    for (const token of tokens) this.tokens.push(token);
  }

  /**
   * Keeps as much of the cache as the new prompt can use and returns how many prompt tokens are already in
   * place. First the common prefix; then, if the prompt's next tokens appear further on in the cache (the front
   * of a story that outgrew the context was trimmed), the tokens in between are erased and the rest is shifted
   * down (llama.cpp's context shift) instead of re-evaluating everything after the cut.
   */
  reusePrefix(prompt: readonly number[]): number {
    let common = commonPrefix(this.tokens, prompt);
    const shiftTo = common < prompt.length ? findShift(this.tokens, prompt, common) : undefined;
    if (shiftTo !== undefined && this.erase(common, shiftTo)) common = commonPrefix(this.tokens, prompt);
    // The last prompt token must be evaluated again: its logits are what the first new token is sampled from.
    if (common === prompt.length) common = Math.max(0, common - 1);
    if (this.tokens.length > common && !this.erase(common, this.tokens.length)) return 0;
    return common;
  }

  /**
   * Drops positions [start, end) and moves the later ones down. Where the cache cannot drop a part (recurrent
   * models, or a sliding window that already lost `start`), it is cleared instead and false is returned.
   */
  erase(start: number, end: number): boolean {
    const length = this.tokens.length;
    end = Math.min(end, length);
    if (start >= end) return true;
    const kept =
      start > this.kv.getSequenceKvCacheMinPosition(this.id) &&
      this.kv.removeTokenCellsFromSequence(this.id, start, end);
    if (!kept) {
      this.clear();
      return false;
    }
    if (end < length) this.kv.shiftSequenceTokenCells(this.id, end, length, start - end);
    this.tokens.splice(start, end - start);
    return true;
  }

  clear(): void {
    this.kv.disposeSequence(this.id);
    this.tokens.length = 0;
  }
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let n = 0;
  const limit = Math.min(a.length, b.length);
  while (n < limit && a[n] === b[n]) n++;
  return n;
}

/**
 * Where the prompt continues inside the cache after `from`, when the client cut the oldest part of its
 * text: the cached position at which the prompt's next tokens appear.
 */
function findShift(cached: readonly number[], prompt: readonly number[], from: number): number | undefined {
  if (prompt.length - from < SHIFT_PROBE) return undefined;
  for (let q = from + 1; q + SHIFT_PROBE <= cached.length; q++) {
    let k = 0;
    while (k < SHIFT_PROBE && cached[q + k] === prompt[from + k]) k++;
    if (k === SHIFT_PROBE) return q;
  }
  return undefined;
}
