/**
 * How often a stream sends an event. A reader that keeps up gets one event per batch of the log (one per token
 * when it keeps up with the decode). A reader that falls behind (Node still holds bytes for its socket after a
 * write, or a write had to wait for `drain`) is sent events at most every `ADAPTIVE_START_MS`, doubling while it
 * stays behind up to `ADAPTIVE_MAX_MS`; the tokens meanwhile pile up in the log and go out together, so a slow or
 * far reader gets fewer, larger events instead of a queue of small ones. Each write that finds the socket clear
 * halves the pace, and below the start it is off again: one event per token. A client may also ask for a pace
 * (`stream_interval_ms`, the WebSocket's `?stream_interval_ms=`); the slower of the two applies.
 */
export const ADAPTIVE_START_MS = 20;
export const ADAPTIVE_MAX_MS = 250;

export class EventPacer {
  private adaptiveMs = 0;
  private lastSendAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly clientMs = 0) {}

  /** After a write: bytes still queued for the socket, and whether the write waited for `drain`. */
  sent(backlogBytes: number, waited: boolean, now = performance.now()): void {
    this.lastSendAt = now;
    if (backlogBytes > 0 || waited) {
      this.adaptiveMs = Math.min(ADAPTIVE_MAX_MS, this.adaptiveMs > 0 ? this.adaptiveMs * 2 : ADAPTIVE_START_MS);
    } else if (this.adaptiveMs > 0) {
      this.adaptiveMs = this.adaptiveMs / 2 < ADAPTIVE_START_MS ? 0 : this.adaptiveMs / 2;
    }
  }

  /** How long to wait before taking the next batch from the log (0: at once). */
  delay(now = performance.now()): number {
    const pace = Math.max(this.clientMs, this.adaptiveMs);
    return pace > 0 ? Math.max(0, this.lastSendAt + pace - now) : 0;
  }

  /** The pace in force now (for tests and the docs' table). */
  get paceMs(): number {
    return Math.max(this.clientMs, this.adaptiveMs);
  }
}

/** Waits `ms`, or less when `signal` aborts first. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
