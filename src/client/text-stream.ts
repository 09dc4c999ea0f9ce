import { AbortedError } from './client-errors.ts';
import type { GenerationResult, StreamEvent, TextStream } from './client-types.ts';
import { LinkedAbortController } from './linked-abort-controller.ts';

type Outcome = { ok: true; value: GenerationResult } | { ok: false; error: unknown };

/**
 * The stream object a caller holds. It owns the AbortController of its request: `abort()`, the caller's
 * signal, or leaving a `for await` early all cancel it. It can be iterated once; `result` settles either way
 * and, when nobody iterates, reading it drains the stream in the background.
 */
export class TextStreamImpl implements TextStream {
  readonly #controller: LinkedAbortController;
  readonly #start: (signal: AbortSignal) => AsyncGenerator<StreamEvent, GenerationResult, undefined>;
  #iterated = false;
  #outcome: Outcome | undefined;
  #waiters: Array<(outcome: Outcome) => void> = [];
  #result: Promise<GenerationResult> | undefined;

  constructor(
    start: (signal: AbortSignal) => AsyncGenerator<StreamEvent, GenerationResult, undefined>,
    parentSignal?: AbortSignal,
  ) {
    this.#start = start;
    this.#controller = new LinkedAbortController(parentSignal);
  }

  abort(): void {
    this.#controller.abort(new AbortedError());
  }

  get result(): Promise<GenerationResult> {
    this.#result ??= new Promise<GenerationResult>((resolve, reject) => {
      const settle = (outcome: Outcome) => (outcome.ok ? resolve(outcome.value) : reject(outcome.error));
      if (this.#outcome) settle(this.#outcome);
      else this.#waiters.push(settle);
    });
    if (!this.#iterated) {
      // Errors reach the caller through `result`; the drain loop itself has nothing to report.
      void (async () => {
        for await (const _ of this) {
          // draining
        }
      })().catch(() => {});
    }
    return this.#result;
  }

  [Symbol.asyncIterator](): AsyncIterator<StreamEvent> {
    if (this.#iterated) throw new Error('a TextStream can be iterated only once');
    this.#iterated = true;
    return this.#iterate();
  }

  async *#iterate(): AsyncGenerator<StreamEvent, void, undefined> {
    const events = this.#start(this.#controller.signal);
    let settled = false;
    try {
      for (;;) {
        const step = await events.next();
        if (step.done) {
          settled = true;
          this.#settle({ ok: true, value: step.value });
          return;
        }
        yield step.value;
      }
    } catch (error) {
      settled = true;
      this.#settle({ ok: false, error });
      throw error;
    } finally {
      if (!settled) {
        // The consumer left the loop early: cancel the request, and let the driver tell the server.
        this.abort();
        try {
          await events.return(undefined as never);
        } catch {
          // The driver's own cleanup failing changes nothing for a consumer that already left.
        }
        this.#settle({ ok: false, error: new AbortedError() });
      }
      this.#controller.dispose();
    }
  }

  #settle(outcome: Outcome): void {
    if (this.#outcome) return;
    this.#outcome = outcome;
    for (const waiter of this.#waiters.splice(0)) waiter(outcome);
  }
}
