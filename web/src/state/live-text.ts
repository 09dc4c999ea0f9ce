// The reply being streamed. Tokens are buffered here and handed to the view at most once per animation frame,
// as an append to one text node: the cost of a frame is the size of the new text, not of the story, so a long
// story streams as smoothly as a short one. The committed story is not touched until the reply ends.

export interface LiveTextSink {
  append(delta: string): void;
  replace(full: string): void;
}

export class LiveText {
  #shown = '';
  #pending = '';
  #replace = false;
  #frame: number | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #sink: LiveTextSink | undefined;
  readonly #onFrame: () => void;

  constructor(onFrame: () => void) {
    this.#onFrame = onFrame;
  }

  get text(): string {
    return this.#replace ? this.#pending : this.#shown + this.#pending;
  }

  reset(): void {
    this.set('');
  }

  append(delta: string): void {
    if (delta.length === 0) return;
    this.#pending += delta;
    this.#schedule();
  }

  /** Replaces the whole reply (poll mode snapshots, a stop string cut off the end). */
  set(full: string): void {
    this.#pending = full;
    this.#replace = true;
    this.#schedule();
  }

  attach(sink: LiveTextSink): void {
    this.#sink = sink;
    this.#flush();
    sink.replace(this.#shown);
  }

  detach(sink: LiveTextSink): void {
    if (this.#sink === sink) this.#sink = undefined;
  }

  #schedule(): void {
    this.#frame ??= requestAnimationFrame(() => this.#flush());
    // Hidden tabs get no animation frames; the timer keeps stats and the crash-safety draft moving there.
    this.#timer ??= setTimeout(() => this.#flush(), 250);
  }

  #flush(): void {
    if (this.#frame !== undefined) cancelAnimationFrame(this.#frame);
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#frame = undefined;
    this.#timer = undefined;
    if (this.#replace) {
      this.#shown = this.#pending;
      this.#sink?.replace(this.#shown);
    } else if (this.#pending.length > 0) {
      this.#shown += this.#pending;
      this.#sink?.append(this.#pending);
    }
    this.#pending = '';
    this.#replace = false;
    this.#onFrame();
  }
}
