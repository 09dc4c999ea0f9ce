/**
 * A generation that runs on its own clock, independent of any connection: events are produced every
 * `intervalMs` into a log, and any number of readers can replay the log from an id and then follow it live.
 * This is what makes resume testable: the fake behaves like our server, which keeps generating while the
 * client reconnects.
 */
export interface GenerationEvent {
  /** 1-based, increasing; the last event carries the finish reason. */
  id: number;
  token: string;
  finishReason: string | null;
}

export class FakeGeneration {
  readonly events: GenerationEvent[] = [];
  readonly tokens: readonly string[];
  #listeners = new Set<(event: GenerationEvent) => void>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #next = 0;
  #finishReason: string;
  #intervalMs: number;

  constructor(
    tokens: readonly string[],
    options: { intervalMs: number; finishReason?: string; startDelayMs?: number },
  ) {
    this.tokens = tokens;
    this.#intervalMs = options.intervalMs;
    this.#finishReason = options.finishReason ?? 'length';
    this.#timer = setTimeout(() => this.#tick(), options.startDelayMs ?? 0);
  }

  get done(): boolean {
    return this.events.at(-1)?.finishReason != null;
  }

  get text(): string {
    return this.events.map((event) => event.token).join('');
  }

  /** Calls `onEvent` for every event after `afterId`, now and as they come. Returns the unsubscribe function. */
  follow(afterId: number, onEvent: (event: GenerationEvent) => void): () => void {
    for (const event of this.events) if (event.id > afterId) onEvent(event);
    if (this.done) return () => {};
    this.#listeners.add(onEvent);
    return () => this.#listeners.delete(onEvent);
  }

  /** Ends the generation now with `reason` (what an abort does on a real server). */
  stop(reason: string): void {
    if (this.done) return;
    clearTimeout(this.#timer);
    this.#emit({ id: this.events.length + 1, token: '', finishReason: reason });
  }

  /** Stops the clock without a final event (test teardown). */
  dispose(): void {
    clearTimeout(this.#timer);
    this.#listeners.clear();
  }

  #tick(): void {
    if (this.done) return;
    if (this.#next < this.tokens.length) {
      this.#emit({ id: this.events.length + 1, token: this.tokens[this.#next++] ?? '', finishReason: null });
      this.#timer = setTimeout(() => this.#tick(), this.#intervalMs);
    } else {
      this.#emit({ id: this.events.length + 1, token: '', finishReason: this.#finishReason });
    }
  }

  #emit(event: GenerationEvent): void {
    this.events.push(event);
    for (const listener of [...this.#listeners]) listener(event);
    if (event.finishReason !== null) this.#listeners.clear();
  }
}
