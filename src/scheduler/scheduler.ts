import type { GenerationRequest } from '../core/generation-request.ts';
import { KindlingError, toKindlingError } from '../core/kindling-error.ts';
import type { Engine } from '../engine/engine.ts';
import { boundRequest } from './bound-sampling.ts';
import { BATCH_AGING_MS, DEFAULT_QOS, FairQueue } from './fair-queue.ts';
import { Generation, type GenerationOrigin, INTERNAL_ORIGIN } from './generation.ts';
import { runGeneration } from './generation-runner.ts';
import { buildPromptTokens, type PromptTokens } from './prompt-tokens.ts';
import { requestFingerprint } from './request-fingerprint.ts';
import type { SchedulerObserver } from './scheduler-observer.ts';
import { DEFAULT_SCHEDULER_OPTIONS, type SchedulerOptions } from './scheduler-options.ts';
import { SchedulerStats } from './scheduler-stats.ts';
import type { SharedQueue } from './shared-queue.ts';

/** Principals whose last generation is remembered for Kobold's key-less view; the oldest is forgotten first. */
const MAX_REMEMBERED_PRINCIPALS = 1024;

/** Protocol names as a user reads them, for the message of a cross-protocol key conflict. */
const PROTOCOL_NAMES: Record<string, string> = {
  kobold: 'KoboldAI',
  'openai-chat': 'OpenAI chat',
  'openai-completion': 'OpenAI completion',
  anthropic: 'Anthropic',
  ollama: 'Ollama',
};

/**
 * Owns the slots and the queue. The queue is weighted-fair across principals, interactive before batch with
 * aging, and keeps each principal within its `maxConcurrent` (fair-queue.ts). The request it hands out goes to
 * the free slot whose cached tokens share the longest prefix with its prompt (so a resent story only evaluates
 * its new tail); aborted queued requests are dropped without running.
 */
/** A slot for the admin status route (slotStates). */
export type SlotState =
  | { id: number; state: 'idle' }
  | {
      id: number;
      state: 'prompt' | 'generating';
      principal: string;
      promptTokens: number;
      generatedTokens: number;
      elapsedMs: number;
    };

export class Scheduler {
  readonly stats = new SchedulerStats();
  private readonly queue: FairQueue<Generation>;
  private agingTimer: NodeJS.Timeout | undefined;
  private readonly running = new Map<number, Generation>();
  /**
   * Client-chosen keys, scoped to the principal that chose them (`principal NUL key`): one principal can
   * neither see nor collide with another's genkey.
   */
  private readonly byKey = new Map<string, Generation>();
  /** Every generation by its server-issued id, which finds it from any principal. */
  private readonly byId = new Map<string, Generation>();
  /** Each principal's most recently started generation: Kobold's key-less "single-user view", per user. */
  private readonly lastByPrincipal = new Map<string, Generation>();
  private lastStarted?: Generation;
  private draining = false;
  /** The fleet's queue (`--redis`): requests that cannot start at once wait there, not in `queue`. */
  private shared: SharedQueue | undefined;
  /** Slots promised to a job being taken from the shared queue (a round trip): nothing else may start in them. */
  private reserved = 0;
  private taking = false;

  constructor(
    readonly engine: Engine,
    readonly options: SchedulerOptions = DEFAULT_SCHEDULER_OPTIONS,
    /** The server's metrics; none in tests of the scheduler alone. */
    private readonly observer?: SchedulerObserver,
  ) {
    this.queue = new FairQueue(options.batchAgingMs ?? BATCH_AGING_MS);
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
    this.shared = shared;
    shared.onWork(() => this.dispatch());
  }
  /** Each slot as it is now, for the admin status route: idle, or the generation it runs and how far it got. */
  slotStates(now = Date.now()): SlotState[] {
    return Array.from({ length: this.slotCount }, (_, id) => {
      const generation = this.running.get(id);
      if (!generation) return { id, state: 'idle' as const };
      let generated = 0;
      for (const { part } of generation.log.partsAfter(0))
        if (part.type === 'text-delta') generated += part.tokens.length;
      return {
        id,
        state: generated > 0 ? ('generating' as const) : ('prompt' as const),
        principal: generation.origin.principal,
        promptTokens: generation.promptTokens.length,
        generatedTokens: generated,
        elapsedMs: now - (generation.startedAt ?? now),
      };
    });
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
    this.forgetExpired();
    return this.byId.get(key) ?? this.byKey.get(scoped(principal, key));
  }

  /** The most recently started generation of anyone (for tests and diagnostics, not for client lookups). */
  get last(): Generation | undefined {
    return this.lastStarted;
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
    const last = this.lastByPrincipal.get(principal);
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
    if (this.shared) return this.enqueueShared(this.shared, request, origin, prompt);
    const generation = this.create(request, origin, prompt);
    this.queue.push(generation, origin.principal, origin.qos);
    this.dispatch();
    if (generation.status === 'queued') {
      generation.emit({ type: 'queued', position: this.positionOf(generation) });
      this.limitQueueWait(generation);
    }
    return generation;
  }

  /**
   * On a fleet node: the request starts here at once when a slot is free and nothing waits anywhere in the fleet
   * (so the fleet's order holds); else it waits in the shared queue for whichever node frees a slot first.
   */
  private async enqueueShared(
    shared: SharedQueue,
    request: GenerationRequest,
    origin: GenerationOrigin,
    prompt: PromptTokens,
  ): Promise<Generation> {
    const qos = origin.qos ?? DEFAULT_QOS;
    const mayStart = () => this.freeSlots() > 0 && this.queue.runningOf(origin.principal) < qos.maxConcurrent;
    if (mayStart() && (await shared.isEmpty()) && mayStart()) {
      const generation = this.create(request, origin, prompt);
      this.queue.hold(origin.principal);
      this.start(generation, this.pickSlot(generation.promptTokens));
      return generation;
    }
    if (this.queue.runningOf(origin.principal) >= qos.maxConcurrent) {
      // Its max_concurrent is counted per node: past it, the request waits here, in the node's own fair queue.
      const generation = this.create(request, origin, prompt);
      this.queue.push(generation, origin.principal, origin.qos);
      generation.emit({ type: 'queued', position: this.positionOf(generation) });
      this.limitQueueWait(generation);
      return generation;
    }
    const generation = this.create(request, origin, prompt);
    try {
      await shared.push(generation, this.options.maxQueue, (ended) => this.endedElsewhere(ended));
    } catch (error) {
      this.forget(generation);
      throw error;
    }
    this.limitQueueWait(generation);
    // A slot may have freed while the job was being queued: it takes the job (this one, or an older one).
    this.dispatch();
    return generation;
  }

  private checkAdmission(request: GenerationRequest, origin: GenerationOrigin): void {
    if (this.draining) throw KindlingError.shuttingDown('not accepting new generations; retry once it is back');
    this.forgetExpired();
    const key = request.key;
    const existing = key ? this.find(origin.principal, key) : undefined;
    if (key && existing && existing.status !== 'done') {
      const other = existing.origin.protocol !== origin.protocol;
      throw new KindlingError(
        'conflict',
        other
          ? `The key "${key}" names a running ${PROTOCOL_NAMES[existing.origin.protocol] ?? existing.origin.protocol} generation; a stream resumes only through the protocol that started it. Use a new key.`
          : `A generation with key "${key}" is still running; resume it with Last-Event-ID (or re-send the same request), or use a new key.`,
      );
    }
    if (key && existing && this.byId.get(key) === existing) {
      // A server id names one generation for its whole life; reusing it for another would make it ambiguous.
      throw new KindlingError(
        'conflict',
        `"${key}" is the server id of an existing generation: resume it with Last-Event-ID, or use a new key.`,
      );
    }
    const freeSlots = this.engine.slotCount - this.running.size;
    const qos = origin.qos ?? DEFAULT_QOS;
    const mustWait = freeSlots <= 0 || this.queue.runningOf(origin.principal) >= qos.maxConcurrent;
    const queued = this.queue.queuedOf(origin.principal);
    if (mustWait && queued >= qos.maxQueued) {
      throw new KindlingError(
        'rate_limited',
        `This key already has ${queued} request${queued === 1 ? '' : 's'} waiting (its max_queued); try again once one has started.`,
        { retryAfterSeconds: 1 },
      );
    }
    origin.qos?.quota?.check();
    if (freeSlots <= 0 && this.queue.length >= this.options.maxQueue) {
      throw new KindlingError(
        'queue_full',
        `Server is busy: ${this.running.size} generations running and ${this.queue.length} waiting. Try again shortly.`,
        {
          retryAfterSeconds: 2,
        },
      );
    }
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
    if (key) this.byKey.set(scoped(origin.principal, key), generation);
    this.byId.set(generation.id, generation);
    generation.signal.addEventListener('abort', () => this.onAbort(generation), { once: true });
    return generation;
  }

  /** A generation that never got to wait (the shared queue refused it): as if it had never been submitted. */
  private forget(generation: Generation): void {
    if (generation.key && this.byKey.get(scoped(generation.origin.principal, generation.key)) === generation)
      this.byKey.delete(scoped(generation.origin.principal, generation.key));
    this.byId.delete(generation.id);
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

  /** A generation fronted here that a peer ran has ended there: its quota is settled with what it used. */
  private endedElsewhere(generation: Generation): void {
    const last = generation.log.last;
    const used = last?.type === 'finish' ? last.usage.promptTokens + last.usage.completionTokens : 0;
    generation.origin.qos?.quota?.settle(used);
  }

  private freeSlots(): number {
    return this.engine.slotCount - this.running.size - this.reserved;
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
    for (const generation of [...this.byId.values()]) {
      if (!this.shared?.holds(generation)) continue;
      if (generation.clientKey) this.shared.handBack(generation);
      else generation.abort('shutdown');
    }
    const sleep = () => new Promise((resolve) => setTimeout(resolve, 5));
    const graceEnd = Date.now() + graceMs;
    while (this.running.size > 0 && Date.now() < graceEnd) await sleep();
    for (const generation of this.running.values()) generation.abort('shutdown');
    const settleEnd = Date.now() + settleMs;
    while (this.running.size > 0 && Date.now() < settleEnd) await sleep();
  }

  private onAbort(generation: Generation): void {
    if (this.shared?.holds(generation)) {
      void this.withdrawShared(this.shared, generation);
      return;
    }
    // A queued generation that is aborted never runs: it finishes at once with nothing generated.
    if (!this.queue.remove(generation)) return;
    this.endQueued(generation);
  }

  /** Out of the fleet's queue; when a node took it meanwhile, the shared queue has sent it the abort instead. */
  private async withdrawShared(shared: SharedQueue, generation: Generation): Promise<void> {
    const withdrawn = await shared.withdraw(generation).catch(() => true);
    if (withdrawn) this.endQueued(generation);
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
    if (this.shared) void this.takeShared(this.shared);
  }

  /**
   * Fills free slots from the fleet's queue, one job at a time (each take is a round trip to Redis). A take that
   * fails (Redis away) leaves the job there for the next node, or for this one at the next sign of work.
   */
  private async takeShared(shared: SharedQueue): Promise<void> {
    if (this.taking) return;
    this.taking = true;
    try {
      // What is left in the node's own queue waits on its principal's max_concurrent, not on a slot.
      while (!this.draining && this.freeSlots() > 0) {
        this.reserved++;
        let generation: Generation | undefined;
        try {
          generation = await shared.take(this.freeSlotCaches());
        } finally {
          this.reserved--;
        }
        if (!generation) break;
        this.adopt(generation);
        this.queue.hold(generation.origin.principal);
        this.start(generation, this.pickSlot(generation.promptTokens));
      }
    } catch {
      // Nothing was taken: the job is still in the shared queue.
    } finally {
      this.taking = false;
    }
  }

  /** A job fronted by a peer becomes one of this node's generations: found by key and id, aborted like one. */
  private adopt(generation: Generation): void {
    if (this.byId.get(generation.id) === generation) return;
    if (generation.clientKey) this.byKey.set(scoped(generation.origin.principal, generation.key), generation);
    this.byId.set(generation.id, generation);
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
    this.lastStarted = generation;
    this.rememberLast(generation);
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
        const cut = generation.abortCause === 'shutdown' && final.type === 'finish' && final.reason === 'abort';
        generation.emit(cut ? { type: 'error', error: KindlingError.shuttingDown() } : final);
        this.observer?.finished(generation);
        this.dispatch();
      });
  }

  private rememberLast(generation: Generation): void {
    const principal = generation.origin.principal;
    this.lastByPrincipal.delete(principal);
    this.lastByPrincipal.set(principal, generation);
    if (this.lastByPrincipal.size > MAX_REMEMBERED_PRINCIPALS) {
      const oldest = this.lastByPrincipal.keys().next().value as string;
      this.lastByPrincipal.delete(oldest);
    }
  }

  private forgetExpired(): void {
    const cutoff = Date.now() - this.options.graceMs;
    const expired = (generation: Generation) =>
      generation.status === 'done' &&
      (generation.finishedAt ?? 0) < cutoff &&
      this.lastByPrincipal.get(generation.origin.principal) !== generation;
    for (const [key, generation] of this.byKey) if (expired(generation)) this.byKey.delete(key);
    for (const [id, generation] of this.byId) if (expired(generation)) this.byId.delete(id);
  }
}

function scoped(principal: string, key: string): string {
  return `${principal}\u0000${key}`;
}
