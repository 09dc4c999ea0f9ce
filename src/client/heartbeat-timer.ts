/**
 * Fires `onTimeout` when `touch()` has not been called for `timeoutMs`. The stream driver touches it on every
 * received chunk (comments included, which is why servers send `: ping`), so a server or proxy that goes
 * silent without closing the socket is detected instead of hanging forever.
 */
export class HeartbeatTimer {
  readonly #timeoutMs: number;
  readonly #onTimeout: () => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #lastTouch = 0;
  #stopped = true;

  constructor(timeoutMs: number, onTimeout: () => void) {
    this.#timeoutMs = timeoutMs;
    this.#onTimeout = onTimeout;
  }

  get enabled(): boolean {
    return this.#timeoutMs > 0;
  }

  /** Arms the timer; on a running timer it only records activity. */
  start(): void {
    if (!this.enabled) return;
    if (!this.#stopped) {
      this.touch();
      return;
    }
    this.#stopped = false;
    this.#lastTouch = Date.now();
    this.#arm(this.#timeoutMs);
  }

  touch(): void {
    // Re-arming a timer per chunk is measurable at thousands of chunks per second; recording the time and
    // checking it when the timer fires costs nothing per chunk.
    this.#lastTouch = Date.now();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(delay: number): void {
    this.#timer = setTimeout(() => {
      if (this.#stopped) return;
      const idle = Date.now() - this.#lastTouch;
      if (idle >= this.#timeoutMs) {
        this.#stopped = true;
        this.#onTimeout();
      } else {
        this.#arm(this.#timeoutMs - idle);
      }
    }, delay);
  }
}
