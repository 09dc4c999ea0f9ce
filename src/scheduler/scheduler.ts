import type { GenerationRequest } from '../core/generation-request.ts';
import { KindlingError, toKindlingError } from '../core/kindling-error.ts';
import type { Engine } from '../engine/engine.ts';
import { assertAdmissible } from './admission.ts';
import { boundRequest } from './bound-sampling.ts';
import { BATCH_AGING_MS, FairQueue } from './fair-queue.ts';
import { Generation, type GenerationOrigin, INTERNAL_ORIGIN } from './generation.ts';
import { GenerationRegistry } from './generation-registry.ts';
import { runGeneration } from './generation-runner.ts';
import { buildPromptTokens, type PromptTokens } from './prompt-tokens.ts';
import { requestFingerprint } from './request-fingerprint.ts';
import type { SchedulerObserver } from './scheduler-observer.ts';
import { DEFAULT_SCHEDULER_OPTIONS, type SchedulerOptions } from './scheduler-options.ts';
import { SchedulerStats } from './scheduler-stats.ts';
import { SharedDispatch } from './shared-dispatch.ts';
import type { SharedQueue } from './shared-queue.ts';
import { type SlotState, slotState } from './slot-state.ts';

/**
 * Owns the slots and the queue. The queue is weighted-fair across principals, interactive before batch with
 * aging, and keeps each principal within its `maxConcurrent` (fair-queue.ts). The request it hands out goes to
 * the free slot whose cached tokens share the longest prefix with its prompt (so a resent story only evaluates
 * its new tail); aborted queued requests are dropped without running.
 */
export class Scheduler {
  readonly stats = new SchedulerStats();
  private readonly queue: FairQueue<Generation>;
  private agingTimer: NodeJS.Timeout | undefined;
  private readonly running = new Map<number, Generation>();
  private readonly registry: GenerationRegistry;
  private draining = false;
  /** The fleet's queue (`--redis`): requests that cannot start at once wait there, not in `queue`. */
  private shared: SharedDispatch | undefined;

  constructor(
    readonly engine: Engine,
    readonly options: SchedulerOptions = DEFAULT_SCHEDULER_OPTIONS,
    /** The server's metrics; none in tests of the scheduler alone. */
    private readonly observer?: SchedulerObserver,
  ) {
    this.queue = new FairQueue(options.batchAgingMs ?? BATCH_AGING_MS);
    this.registry = new GenerationRegistry(options.graceMs);
  }

  get queueByPriority(): Record<'interactive' | 'batch', number> {
    return this.queue.byPriority();
  }
  get queueLength(): number {
    return this.queue.length;
  }

  /**
   * Joins a queue shared with other nodes (a fleet's): from now on a request that cannot start here at once waits
   * there, and a free slot here takes the next job from there, whichever node took its request in.
   */
  useSharedQueue(shared: SharedQueue): void {
    this.shared = new SharedDispatch(
      shared,
      {
        unreservedFreeSlots: () => this.engine.slotCount - this.running.size,
        isDraining: () => this.draining,
        runningOf: (principal) => this.queue.runningOf(principal),
        create: (request, origin, prompt) => this.create(request, origin, prompt),
        forget: (generation) => this.forget(generation),
        startHere: (generation) => {
          this.queue.hold(generation.origin.principal);
          this.start(generation, this.pickSlot(generation.promptTokens));
        },
        limitQueueWait: (generation) => this.limitQueueWait(generation),
        endQueued: (generation) => this.endQueued(generation),
        adopt: (generation) => this.registry.add(generation),
        freeSlotCaches: () => this.freeSlotCaches(),
        dispatch: () => this.dispatch(),
      },
      this.options.maxQueue,
    );
  }

  /** Each slot as it is now, for the admin status route: idle, or the generation it runs and how far it got. */
  slotStates(now = Date.now()): SlotState[] {
    return Array.from({ length: this.slotCount }, (_, id) => slotState(id, this.running.get(id), now));
  }

  get busySlots(): number {
    return this.running.size;
  }
  get slotCount(): number {
    return this.engine.slotCount;
  }

  /**
   * Queue position of a queued generation, 0 once it runs: 1 + how many waiting requests start before it in the
   * queue's current order (fair share, priority and aging included; fair-queue.ts `order`).
   */
  positionOf(generation: Generation): number {
    if (generation.status !== 'queued') return 0;
    if (this.shared?.holds(generation)) return this.shared.positionOf(generation);
    return this.queue.order(this.engine.slotCount).indexOf(generation) + 1;
  }

  /** Generations of a principal waiting for a slot, and holding one. */
  loadOf(principal: string): { queued: number; running: number } {
    return { queued: this.queue.queuedOf(principal), running: this.queue.runningOf(principal) };
  }

  /**
   * The generation a principal may reach by `key`: its own client key, or any generation's server id.
   * Another principal's key is not found, exactly like an unknown key.
   */
  find(principal: string, key: string): Generation | undefined {
    return this.registry.find(principal, key);
  }

  /** The most recently started generation of anyone (for tests and diagnostics, not for client lookups). */
  get last(): Generation | undefined {
    return this.registry.last;
  }

  /** True once shutdown began: nothing new is admitted. */
  get isDraining(): boolean {
    return this.draining;
  }

  /**
   * Kobold's key-less view for one principal: its last started generation, when that one had no key and
   * nothing else of the principal waits in the queue (KoboldCpp's rule, per user instead of global).
   */
  lastOf(principal: string): Generation | undefined {
    const last = this.registry.lastStartedBy(principal);
    if (!last || last.clientKey) return undefined;
    return this.queue.queuedOf(principal) > 0 ? undefined : last;
  }

  /**
   * Admits a request: refused at once when the server drains, its key names a live generation, or the queue is
   * full; else its prompt is tokenized (a long tail in slices that let other requests run meanwhile) and it joins
   * the queue. The checks run again after tokenizing, since the world may have moved on meanwhile.
   */
  async submit(submitted: GenerationRequest, origin: GenerationOrigin = INTERNAL_ORIGIN): Promise<Generation> {
    const request = boundRequest(submitted, this.engine.model);
    this.checkAdmission(request, origin);
    const prompt = await buildPromptTokens(this.engine, request, this.engine.model.contextSize);
    this.checkAdmission(request, origin);
    if (this.shared) return this.shared.submit(request, origin, prompt);
    const generation = this.create(request, origin, prompt);
    this.queue.push(generation, origin.principal, origin.qos);
    this.dispatch();
    if (generation.status === 'queued') {
      generation.emit({ type: 'queued', position: this.positionOf(generation) });
      this.limitQueueWait(generation);
    }
    return generation;
  }

  private checkAdmission(request: GenerationRequest, origin: GenerationOrigin): void {
    this.registry.forgetExpired();
    const existing = request.key ? this.registry.find(origin.principal, request.key) : undefined;
    assertAdmissible(
      {
        draining: this.draining,
        existing,
        keyIsServerId: existing !== undefined && this.registry.isServerId(request.key ?? '', existing),
        freeSlots: this.engine.slotCount - this.running.size,
        running: this.running.size,
        queueLength: this.queue.length,
        maxQueue: this.options.maxQueue,
        runningOf: (principal) => this.queue.runningOf(principal),
        queuedOf: (principal) => this.queue.queuedOf(principal),
      },
      request,
      origin,
    );
  }

  /** A new generation, registered by key and id, its quota reserved (settled when it ends, whichever way). */
  private create(request: GenerationRequest, origin: GenerationOrigin, prompt: PromptTokens): Generation {
    const key = request.key;
    const { prompt: _prompt, memory: _memory, ...settled } = request;
    // Nothing below throws: the quota's reservation is settled when this generation ends, whichever way.
    const allowed = origin.qos?.quota?.admit(prompt.tokens.length, prompt.maxTokens) ?? prompt.maxTokens;
    // A budget cut by the quota ends as `max-tokens` ("length"), like max_length, not as a full context.
    if (allowed < prompt.maxTokens) settled.maxTokens = allowed;
    const generation = new Generation(
      settled,
      prompt.tokens,
      Math.min(allowed, prompt.maxTokens),
      prompt.truncated,
      origin,
      this.options.resumeWindowMs ?? DEFAULT_SCHEDULER_OPTIONS.resumeWindowMs,
      // Only a keyed request can be re-sent to reattach (submit-or-resume.ts): an anonymous one needs none.
      key ? requestFingerprint(request) : '',
    );
    generation.seed = request.sampling.seed ?? Math.floor(Math.random() * 1_000_000) + 1;
    if (prompt.text !== undefined) generation.promptText = prompt.text;
    this.registry.add(generation);
    generation.signal.addEventListener('abort', () => this.onAbort(generation), { once: true });
    return generation;
  }

  /** A generation that never got to wait (the shared queue refused it): as if it had never been submitted. */
  private forget(generation: Generation): void {
    this.registry.remove(generation);
    generation.origin.qos?.quota?.settle(0);
    generation.status = 'done';
  }

  private limitQueueWait(generation: Generation): void {
    if (this.options.maxQueueWaitMs <= 0) return;
    const timer = setTimeout(
      () => generation.status === 'queued' && generation.abort('timeout'),
      this.options.maxQueueWaitMs,
    );
    timer.unref();
  }

  private freeSlots(): number {
    return this.shared ? this.shared.freeSlots() : this.engine.slotCount - this.running.size;
  }

  /**
   * Kobold `/abort` semantics, per principal: a key (own client key or any server id) names the generation;
   * without one, the principal's own last key-less generation while it runs. Returns true when something was
   * aborted.
   */
  abort(principal: string, key: string | undefined): boolean {
    const target = key ? this.find(principal, key) : this.lastOf(principal);
    if (!target || target.status === 'done' || (!key && target.status !== 'running')) return false;
    target.abort('client');
    return true;
  }

  /**
   * Shutdown: stops admitting work (submit fails with 503), ends every queued generation at once, lets the running
   * ones finish for up to `graceMs`, then cuts the rest. What shutdown ends, ends with a `shutting_down` error (never
   * a normal finish reason). Resolves once the slots are empty, or `settleMs` after the cut if the engine holds
   * on (then `busySlots` is not 0, and the engine must not be freed under a running decode).
   *
   * In a fleet, a keyed request waiting in the fleet's queue is handed back instead: another node runs it and its
   * client resumes it there by key (an anonymous one could not be found again, so it ends with the error).
   */
  async drain(graceMs = 0, settleMs = 2000): Promise<void> {
    this.draining = true;
    for (const generation of this.queue.items()) generation.abort('shutdown');
    this.shared?.drain(this.registry.all());
    const sleep = () => new Promise((resolve) => setTimeout(resolve, 5));
    const graceEnd = Date.now() + graceMs;
    while (this.running.size > 0 && Date.now() < graceEnd) await sleep();
    for (const generation of this.running.values()) generation.abort('shutdown');
    const settleEnd = Date.now() + settleMs;
    while (this.running.size > 0 && Date.now() < settleEnd) await sleep();
  }

  private onAbort(generation: Generation): void {
    if (this.shared?.holds(generation)) {
      void this.shared.withdraw(generation);
      return;
    }
    // A queued generation that is aborted never runs: it finishes at once with nothing generated.
    if (!this.queue.remove(generation)) return;
    this.endQueued(generation);
  }

  /** The end of a generation aborted while it waited: its finish (or error) part, with nothing generated. */
  private endQueued(generation: Generation): void {
    generation.origin.qos?.quota?.settle(0);
    generation.status = 'done';
    generation.finishedAt = Date.now();
    const reason = generation.abortCause === 'timeout' ? 'Queue wait limit reached' : undefined;
    if (generation.abortCause === 'shutdown') {
      generation.emit({ type: 'error', error: KindlingError.shuttingDown('the request was still queued') });
    } else if (reason) {
      generation.emit({
        type: 'error',
        error: new KindlingError(
          'timeout',
          `${reason}: the request waited longer than ${this.options.maxQueueWaitMs} ms for a free slot.`,
        ),
      });
    } else {
      generation.emit({
        type: 'finish',
        reason: 'abort',
        usage: {
          promptTokens: generation.promptTokens.length,
          cachedPromptTokens: 0,
          completionTokens: 0,
          truncatedPromptTokens: generation.truncatedTokens,
        },
        timings: { queuedMs: Date.now() - generation.createdAt, promptMs: 0, generationMs: 0 },
      });
    }
    this.observer?.finished(generation);
    this.announcePositions();
  }

  private dispatch(): void {
    while (this.freeSlots() > 0) {
      const generation = this.queue.take();
      if (!generation) break;
      this.start(generation, this.pickSlot(generation.promptTokens));
    }
    this.announcePositions();
    if (this.shared) void this.shared.fill();
  }

  private freeSlotCaches(): Array<readonly number[]> {
    const caches: Array<readonly number[]> = [];
    for (let slot = 0; slot < this.engine.slotCount; slot++)
      if (!this.running.has(slot)) caches.push(this.engine.cachedTokens(slot));
    return caches;
  }

  /** Tells every waiting generation whose place changed; also when a batch request ages past others. */
  private announcePositions(): void {
    this.queue.order(this.engine.slotCount).forEach((generation, index) => {
      const last = generation.log.last;
      if (last?.type === 'queued' && last.position !== index + 1)
        generation.emit({ type: 'queued', position: index + 1 });
    });
    clearTimeout(this.agingTimer);
    const agingAt = this.queue.nextAgingAt();
    if (agingAt === undefined) return;
    this.agingTimer = setTimeout(() => this.announcePositions(), Math.max(1, agingAt - Date.now() + 1));
    this.agingTimer.unref();
  }

  /** The free slot whose cache shares the longest prefix with the prompt. */
  private pickSlot(prompt: readonly number[]): number {
    let best = -1;
    let bestShared = -1;
    for (let slot = 0; slot < this.engine.slotCount; slot++) {
      if (this.running.has(slot)) continue;
      const cached = this.engine.cachedTokens(slot);
      let shared = 0;
      const limit = Math.min(cached.length, prompt.length);
      while (shared < limit && cached[shared] === prompt[shared]) shared++;
      if (shared > bestShared) {
        best = slot;
        bestShared = shared;
      }
    }
    return best;
  }

  private start(generation: Generation, slot: number): void {
    generation.status = 'running';
    generation.slot = slot;
    generation.startedAt = Date.now();
    this.running.set(slot, generation);
    this.registry.started(generation);
    let timer: NodeJS.Timeout | undefined;
    if (this.options.maxGenerationMs > 0) {
      timer = setTimeout(() => generation.abort('timeout'), this.options.maxGenerationMs);
      timer.unref();
    }
    this.observer?.started(generation);
    runGeneration(this.engine, generation, slot, this.observer)
      .catch((error: unknown) => ({
        figures: undefined,
        final: { type: 'error', error: toKindlingError(error) } as const,
      }))
      .then(({ figures, final }) => {
        clearTimeout(timer);
        this.running.delete(slot);
        this.queue.release(generation.origin.principal);
        generation.origin.qos?.quota?.settle(figures ? figures.promptTokens + figures.generatedTokens : 0);
        generation.status = 'done';
        generation.finishedAt = Date.now();
        if (figures) this.stats.record(figures, generation.seed);
        // Cut by shutdown: the text is incomplete, and saying so as a finish reason would read as a normal ending.
        const aborted = final.type === 'finish' && final.reason === 'abort';
        const cut = aborted && generation.abortCause === 'shutdown';
        if (aborted && generation.failure) generation.emit({ type: 'error', error: generation.failure });
        else generation.emit(cut ? { type: 'error', error: KindlingError.shuttingDown() } : final);
        this.observer?.finished(generation);
        this.shared?.ended(generation);
        this.dispatch();
      });
  }
}
