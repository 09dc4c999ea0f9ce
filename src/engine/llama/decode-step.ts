/**
 * Lines up the slots' next-token decodes so that all generating slots enter one llama.cpp batch.
 *
 * node-llama-cpp decodes whatever sequences have queued a token when its batch loop comes round, and
 * samples each sequence on its own worker thread. The sequence whose sampling finishes last queues its
 * next token after the batch has already gone, so with 4 slots most batches held 3 tokens and the
 * stragglers needed extra decodes: about 175 decodes for 128 steps, each nearly as costly as a full one.
 * Here a slot asks for its next decode through `next()`, which waits until every member of the step has
 * received its token and asked again (or left), then starts all of them in the same event-loop turn.
 *
 * A member is a slot in its token-by-token phase. A slot evaluating a long prompt is not one, so it
 * never holds the others back; it joins with its first sampling step.
 */
export class DecodeStep {
  private readonly members = new Set<number>();
  /** Slots whose decode has been started and has not delivered its token yet. */
  private readonly inFlight = new Set<number>();
  private held = new Map<number, { start: () => void; cancel: (reason: Error) => void }>();
  private fallback?: NodeJS.Timeout;

  /**
   * @param releaseAfterTurn start the held decodes in the event loop's check phase instead of at once, so the
   *   socket writes of this turn go out before the next decode does. Which order is faster depends on the
   *   binary's threads (see `releaseAfterTurn` in context-plan.ts).
   * @param maxHoldMs how long decodes are held for a member that received its token but has not asked again
   *   (it is busy with something else, e.g. taking tokens back), before they start without it.
   */
  constructor(
    private readonly releaseAfterTurn: boolean,
    private readonly maxHoldMs = 5,
  ) {}

  /** Runs `decode` for `slot` in the next step shared with the other members; the slot becomes a member. */
  next<T>(slot: number, decode: () => Promise<T>): Promise<T> {
    this.members.add(slot);
    if (!this.releaseAfterTurn && this.members.size === 1 && this.held.size === 0 && this.inFlight.size === 0) {
      // The only member, nothing in flight: the step is this decode alone, so it starts now. What the general
      // path below would do too, a turn of promises later, without its allocations (a single stream's tokens).
      this.inFlight.add(slot);
      return decode().finally(() => this.finished(slot));
    }
    return new Promise<void>((start, cancel) => {
      this.held.set(slot, { start, cancel });
      this.releaseWhenReady();
    }).then(() => decode().finally(() => this.finished(slot)));
  }

  private finished(slot: number): void {
    this.inFlight.delete(slot);
    this.releaseWhenReady();
  }

  /**
   * The slot will ask for no more decodes for now (its generation ends, or it stops to take tokens back). A
   * decode it asked for that has not started never starts: its promise rejects.
   */
  leave(slot: number): void {
    const held = this.held.get(slot);
    this.held.delete(slot);
    held?.cancel(new Error('the slot left the decode step before its decode started'));
    if (this.members.delete(slot)) this.releaseWhenReady();
  }

  private releaseWhenReady(): void {
    if (this.held.size === 0 || this.inFlight.size > 0) return;
    if (this.held.size >= this.members.size) {
      this.release();
      return;
    }
    // A member got its token but has not asked again yet: wait for it, within bounds.
    this.fallback ??= setTimeout(() => {
      this.fallback = undefined;
      if (this.inFlight.size === 0) this.release();
    }, this.maxHoldMs);
  }

  private release(): void {
    clearTimeout(this.fallback);
    this.fallback = undefined;
    const held = [...this.held];
    this.held = new Map();
    // In flight from now on, so a slot that asks before they start waits for this step to end.
    for (const [slot] of held) this.inFlight.add(slot);
    const startAll = () => {
      for (const [, { start }] of held) start();
    };
    if (this.releaseAfterTurn) setImmediate(startAll);
    else startAll();
  }
}
