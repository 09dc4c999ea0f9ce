import type { EngineCounters } from '../engine.ts';
import type { NativeBatch, NativeSampler, NativeStep, NativeStepResult } from './native-context.ts';

/**
 * The engine's decode loop: every slot's tokens go through it, and it builds llama.cpp batches from them.
 *
 * It replaces node-llama-cpp's own batching (`sequence.evaluate`) for three reasons, all measured:
 * - cost: node-llama-cpp spends about 450 µs of JavaScript per generated token around the decode (locks, a
 *   sampler config rebuilt and re-sent, the sequence's token list copied, its batch scheduling); on a 2-core
 *   machine that is 7 % of a token's time taken from the decoding threads. Here a token costs one batch entry,
 *   one decode and one sample call;
 * - lockstep: node-llama-cpp decodes whatever sequences have queued a token when its loop comes round. The one
 *   whose sampling finished last queues after the batch has gone, so with 4 slots most batches held 3 tokens
 *   and stragglers needed extra decodes (175 decodes for 128 steps). Here a batch starts when every member (a
 *   slot generating token by token) has asked for its next token, or a member has kept the others waiting
 *   `maxHoldMs`;
 * - order: with one KV stream per sequence, llama.cpp cuts a batch into micro-batches of consecutively numbered
 *   sequences, each a full pass over the weights, so 4 sequences in reverse order cost 4 passes and in order one
 *   (bench/batch-shape.ts: 54 ms a step against 41 ms). Batches list sequences in increasing id order.
 *
 * KV cache edits (`exclusive`) run between batches, never while one decodes.
 */

export interface DecodeRequest<T> {
  /** The slot, which is also its llama.cpp sequence id. */
  slot: number;
  tokens: readonly number[];
  /** The first token's position in the slot's sequence. */
  position: number;
  /**
   * Samples from the last token's logits once its batch is decoded, before the next batch overwrites them; the
   * request resolves with what it returns. Without it the tokens are only evaluated.
   */
  sample?: (logitIndex: number, sampled?: NativeStepResult) => Promise<T>;
  /**
   * Readies the sample of the last token before its batch decodes, for the loop's native step, which samples
   * within the decode and then hands `sample` its result. Undefined, or throwing, leaves it to `sample`.
   */
  prepare?: () => PreparedSample | undefined;
  /** Called after each batch with those of the request's tokens that it decoded. */
  decoded?: (tokens: readonly number[]) => void;
  /** Tokens not yet decoded when it aborts are dropped, and the request resolves with undefined. */
  signal?: AbortSignal;
}

export interface PreparedSample {
  sampler: NativeSampler;
  probabilities: boolean;
}

interface Queued {
  request: DecodeRequest<unknown>;
  /** Tokens of the request decoded so far. */
  done: number;
  inFlight: boolean;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

export interface BatchLoopOptions {
  /** Start batches in the event loop's check phase instead of at once (see `releaseAfterTurn` in context-plan.ts). */
  releaseAfterTurn: boolean;
  /** How long members that have their token but have not asked again hold a batch back. */
  maxHoldMs?: number;
  counters?: Pick<EngineCounters, 'decodeBatches' | 'batchedSequences'>;
  /** Samples within the decode (batch-step.ts); without it, or when a plan did not run, each slot samples after. */
  step?: NativeStep;
}

type Part = { queued: Queued; amount: number; tokens: readonly number[] };

const NO_LOGITS = new Uint32Array(0);
const FIRST_LOGIT = new Uint32Array([0]);

export class BatchLoop {
  private readonly queue: Queued[] = [];
  private readonly members = new Set<number>();
  private exclusives: Array<() => void> = [];
  private busy = false;
  private startScheduled = false;
  private hold?: NodeJS.Timeout | undefined;
  private holdExpired = false;
  private readonly maxHoldMs: number;

  constructor(
    private readonly native: NativeBatch,
    private readonly batchSize: number,
    private readonly options: BatchLoopOptions,
  ) {
    this.maxHoldMs = options.maxHoldMs ?? 5;
  }

  /**
   * Queues tokens of a slot (one request per slot at a time). A request that samples makes the slot a member
   * until `leave`. Resolves with the sample, or undefined when it was evaluate-only, aborted or cancelled.
   */
  decode<T>(request: DecodeRequest<T>): Promise<T | undefined> {
    if (request.sample) this.members.add(request.slot);
    return new Promise<T | undefined>((resolve, reject) => {
      this.queue.push({ request, done: 0, inFlight: false, resolve: resolve as (value: unknown) => void, reject });
      this.kick();
    });
  }

  /** The slot asks for no more tokens for now: what it queued and is not decoding yet is cancelled. */
  leave(slot: number): void {
    this.members.delete(slot);
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const queued = this.queue[i] as Queued;
      if (queued.request.slot !== slot || queued.inFlight) continue;
      this.queue.splice(i, 1);
      queued.resolve(undefined);
    }
    this.kick();
  }

  /**
   * Runs `edit` when no batch is decoding (KV cache changes): at once, returning its result, when none is;
   * otherwise after the batch, through the promise. At once matters for the first token: a new generation's
   * prompt then goes to the engine in the same turn as its request, before the server sets up the stream.
   */
  exclusive<T extends number | boolean | undefined>(edit: () => T): T | Promise<T> {
    if (!this.busy && !this.startScheduled && this.exclusives.length === 0) return edit();
    // Queued behind a batch or runAlone work, this edit runs when that ends.
    return new Promise<T>((resolve, reject) => {
      this.exclusives.push(() => {
        try {
          resolve(edit());
        } catch (error) {
          reject(error);
        }
      });
      this.kick();
    });
  }

  /**
   * Runs `work` while no batch decodes, and starts none until it is done: for work on another llama.cpp
   * context that must not decode beside ours (node-llama-cpp serializes decodes across contexts on Vulkan).
   */
  runAlone<T>(work: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.exclusives.push(() => {
        this.busy = true;
        work()
          .then(resolve, reject)
          .finally(() => {
            this.busy = false;
            this.kick();
          });
      });
      this.kick();
    });
  }

  /** Resolves once nothing is decoding or queued (before the context is disposed). */
  async idle(): Promise<void> {
    while (this.busy || this.startScheduled || this.queue.length > 0)
      await new Promise((resolve) => setTimeout(resolve, 1));
  }

  private kick(): void {
    if (this.busy || this.startScheduled) return;
    if (this.exclusives.length > 0) {
      const edits = this.exclusives;
      this.exclusives = [];
      for (const edit of edits) edit();
      if (this.busy) return; // runAlone work began
    }
    this.dropAborted();
    if (this.queue.length === 0) return;
    if (!this.holdExpired && !this.membersAllQueued()) {
      this.hold ??= setTimeout(() => {
        this.hold = undefined;
        this.holdExpired = true;
        this.kick();
      }, this.maxHoldMs).unref();
      return;
    }
    clearTimeout(this.hold);
    this.hold = undefined;
    this.holdExpired = false;
    if (this.options.releaseAfterTurn) {
      this.startScheduled = true;
      setImmediate(() => {
        this.startScheduled = false;
        void this.runBatch();
      });
    } else void this.runBatch();
  }

  private membersAllQueued(): boolean {
    if (this.members.size === 1 && this.queue.length === 1) return this.members.has(this.queue[0]?.request.slot ?? -1);
    for (const slot of this.members) if (!this.queue.some((queued) => queued.request.slot === slot)) return false;
    return true;
  }

  private dropAborted(): void {
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const queued = this.queue[i] as Queued;
      if (!queued.request.signal?.aborted) continue;
      this.queue.splice(i, 1);
      queued.resolve(undefined);
    }
  }

  private async runBatch(): Promise<void> {
    this.busy = true;
    const parts = this.nextBatch();
    const indexes: Uint32Array[] = [];
    let planned: { id: number; at: Array<number | undefined> } | undefined;
    try {
      const size = parts.reduce((sum, part) => sum + part.amount, 0);
      this.native.initBatch(size);
      for (const { queued, amount, tokens } of parts) {
        const { request, done } = queued;
        const last = done + amount === request.tokens.length;
        const logits = !last || !request.sample ? NO_LOGITS : amount === 1 ? FIRST_LOGIT : Uint32Array.of(amount - 1);
        indexes.push(this.native.addToBatch(request.slot, request.position + done, Uint32Array.from(tokens), logits));
      }
      planned = this.plan(parts, indexes, size);
      await this.native.decodeBatch();
    } catch (error) {
      if (planned) this.options.step?.take(planned.id);
      // Their slots are not generating any more, so they hold no batch back either.
      for (const { queued } of parts) {
        this.remove(queued);
        this.members.delete(queued.request.slot);
        queued.reject(error);
      }
      this.finishBatch();
      return;
    }
    if (this.options.counters) {
      this.options.counters.decodeBatches++;
      this.options.counters.batchedSequences += parts.length;
    }
    const results = planned ? this.options.step?.take(planned.id) : undefined;
    const finished: Queued[] = [];
    const samples: Array<Promise<unknown> | undefined> = [];
    parts.forEach(({ queued, amount, tokens }, i) => {
      const { request } = queued;
      queued.inFlight = false;
      request.decoded?.(tokens);
      queued.done += amount;
      if (queued.done < request.tokens.length) return;
      this.remove(queued);
      finished.push(queued);
      const at = planned?.at[i];
      const sampled = results && at !== undefined ? results[at] : undefined;
      samples.push(request.sample?.((indexes[i] as Uint32Array)[0] as number, sampled));
    });
    // The samplers read this batch's logits, so the next batch waits for all of them. Only then are the slots
    // given their tokens, all in this turn: each asks for its next token first thing, so the next batch starts
    // as soon as the last one has asked, and the rest of their work (text, stop strings, the socket) runs
    // beside its decode instead of before it.
    const sampled = await Promise.allSettled(samples);
    this.busy = false;
    finished.forEach((queued, i) => {
      const outcome = sampled[i] as PromiseSettledResult<unknown>;
      if (outcome.status === 'fulfilled') queued.resolve(outcome.value);
      else queued.reject(outcome.reason);
    });
    this.kick();
  }

  /**
   * Hands the native step the samples of this batch: the plan's id and, for each part, its index in the plan
   * (undefined where the part samples after the decode). Undefined when nothing is planned.
   */
  private plan(
    parts: readonly Part[],
    indexes: readonly Uint32Array[],
    size: number,
  ): { id: number; at: Array<number | undefined> } | undefined {
    const step = this.options.step;
    if (!step) return undefined;
    const at: Array<number | undefined> = [];
    const samplers: NativeSampler[] = [];
    const logitIndexes: number[] = [];
    const probabilities: number[] = [];
    parts.forEach(({ queued, amount }, i) => {
      const { request } = queued;
      let prepared: PreparedSample | undefined;
      if (request.sample && request.prepare && queued.done + amount === request.tokens.length) {
        try {
          prepared = request.prepare();
        } catch {
          // Its sample prepares again after the decode, and rejects that request alone, as without a step.
        }
      }
      at.push(prepared ? samplers.length : undefined);
      if (!prepared) return;
      samplers.push(prepared.sampler);
      logitIndexes.push((indexes[i] as Uint32Array)[0] as number);
      probabilities.push(prepared.probabilities ? 1 : 0);
    });
    if (samplers.length === 0) return undefined;
    const last = parts[parts.length - 1] as Part;
    const lastToken = last.tokens[last.tokens.length - 1] as number;
    const lastPosition = last.queued.request.position + last.queued.done + last.amount - 1;
    let id: number;
    try {
      id = step.plan(
        samplers,
        Int32Array.from(logitIndexes),
        Uint8Array.from(probabilities),
        size,
        lastToken,
        lastPosition,
        last.queued.request.slot,
      );
    } catch {
      return undefined; // the slots sample after the decode
    }
    return { id, at };
  }

  private finishBatch(): void {
    this.busy = false;
    this.kick();
  }

  private remove(queued: Queued): void {
    const at = this.queue.indexOf(queued);
    if (at >= 0) this.queue.splice(at, 1);
  }

  /** Fair shares of the batch in queue order, listed by sequence id, each with the tokens it takes. */
  private nextBatch(): Part[] {
    const only = this.queue.length === 1 ? this.queue[0] : undefined;
    const shares = only
      ? [{ queued: only, amount: Math.min(this.batchSize, only.request.tokens.length - only.done) }]
      : fairShares(
          this.queue.map((queued) => queued.request.tokens.length - queued.done),
          this.batchSize,
        )
          .map((amount, i) => ({ queued: this.queue[i] as Queued, amount }))
          .filter((part) => part.amount > 0)
          .sort((a, b) => a.queued.request.slot - b.queued.request.slot);
    return shares.map(({ queued, amount }) => {
      queued.inFlight = true;
      const { tokens } = queued.request;
      const whole = queued.done === 0 && amount === tokens.length;
      return { queued, amount, tokens: whole ? tokens : tokens.slice(queued.done, queued.done + amount) };
    });
  }
}

/**
 * Water-filling: each item gets up to an equal share of the room, and what short items leave is shared again
 * by the rest. A sequence decoding one token therefore always gets it, whatever long prompts are queued.
 */
export function fairShares(lengths: readonly number[], size: number): number[] {
  const amounts = lengths.map(() => 0);
  let room = size;
  let open = lengths.map((_, i) => i);
  while (room > 0 && open.length > 0) {
    const share = Math.max(1, Math.floor(room / open.length));
    for (const i of open) {
      const give = Math.min(share, (lengths[i] as number) - (amounts[i] as number), room);
      amounts[i] = (amounts[i] as number) + give;
      room -= give;
      if (room === 0) break;
    }
    open = open.filter((i) => (amounts[i] as number) < (lengths[i] as number));
  }
  return amounts;
}
