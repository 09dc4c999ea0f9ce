import type { LoggedPart } from '../core/logged-part.ts';
import type { StreamPart } from '../core/stream-part.ts';

/**
 * The append-only record of one generation. The engine appends at its own pace; every reader (SSE
 * stream, WebSocket, poll, a resumed connection) reads from its own cursor. A slow reader therefore never
 * slows the engine or other readers, and gets what accumulated while it was blocked as one batch.
 */
export class GenerationLog {
  private readonly parts: StreamPart[] = [];
  private waiters: Array<() => void> = [];
  private textSoFar = '';
  private done = false;
  private observer: ((logged: LoggedPart) => void) | undefined;

  /**
   * Hands `observer` every part already logged, then each one as it is appended (one observer: a fleet node
   * copies the log to Redis this way). Without one, append costs what it did.
   */
  observe(observer: (logged: LoggedPart) => void): void {
    this.observer = observer;
    for (const logged of this.partsAfter(0)) observer(logged);
  }

  append(part: StreamPart): void {
    if (this.done) return;
    this.parts.push(part);
    this.observer?.({ id: this.parts.length, part });
    if (part.type === 'text-delta') this.textSoFar += part.text;
    if (part.type === 'finish' || part.type === 'error') this.done = true;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** All text emitted so far (what `/check` returns). */
  get text(): string {
    return this.textSoFar;
  }
  get ended(): boolean {
    return this.done;
  }
  get lastId(): number {
    return this.parts.length;
  }
  get last(): StreamPart | undefined {
    return this.parts[this.parts.length - 1];
  }

  partsAfter(afterId: number): LoggedPart[] {
    const start = Math.max(0, afterId);
    return this.parts.slice(start).map((part, i) => ({ id: start + i + 1, part }));
  }

  /** Resolves when a part is appended after `afterId` (at once if one already is), or the signal aborts. */
  waitForPartAfter(afterId: number, signal?: AbortSignal): Promise<void> {
    if (this.parts.length > afterId || this.done || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const onAbort = () => resolve();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  /**
   * Yields batches of parts after `afterId` until the final part. Each batch holds everything that
   * accumulated since the previous one, which is how a slow reader's tokens get coalesced.
   */
  async *read(afterId: number, signal?: AbortSignal): AsyncGenerator<LoggedPart[], void, undefined> {
    // Ids start at 1: a cursor below 0 is the start, as in partsAfter (and never yields an empty batch).
    let cursor = Math.max(0, afterId);
    // One abort listener for the reader's life, not one per wait: a wait happens for every token.
    let wake: (() => void) | undefined;
    const onAbort = () => wake?.();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      while (!signal?.aborted) {
        if (this.parts.length > cursor) {
          const batch = this.partsAfter(cursor);
          cursor = this.parts.length;
          yield batch;
          continue;
        }
        if (this.done) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
          this.waiters.push(resolve);
        });
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }
}
