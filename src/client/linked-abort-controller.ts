/**
 * An AbortController that also aborts (with the same reason) when `parent` aborts. Each request attempt gets
 * one, so the heartbeat can cancel a single attempt without cancelling the whole generation, while the
 * caller's signal still cancels everything. `dispose()` removes the listener so long-lived parent signals do
 * not collect one listener per attempt.
 */
export class LinkedAbortController extends AbortController {
  readonly #parent: AbortSignal | undefined;
  readonly #onParentAbort = () => this.abort(this.#parent?.reason);

  constructor(parent?: AbortSignal) {
    super();
    this.#parent = parent;
    if (parent?.aborted) this.abort(parent.reason);
    else parent?.addEventListener('abort', this.#onParentAbort, { once: true });
  }

  dispose(): void {
    this.#parent?.removeEventListener('abort', this.#onParentAbort);
  }
}
