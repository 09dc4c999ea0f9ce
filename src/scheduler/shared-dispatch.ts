import type { GenerationRequest } from '../core/generation-request.ts';
import { DEFAULT_QOS } from './fair-queue.ts';
import type { Generation, GenerationOrigin } from './generation.ts';
import type { PromptTokens } from './prompt-tokens.ts';
import type { SharedQueue } from './shared-queue.ts';

/** What the fleet's dispatch needs of the scheduler whose slots it fills. */
export interface DispatchHost {
  /** Slots with nothing running in them (promises to takes in flight not subtracted). */
  unreservedFreeSlots(): number;
  isDraining(): boolean;
  /** Slots the principal holds on this node. */
  runningOf(principal: string): number;
  /** A new generation, registered by key and id, its quota reserved. */
  create(request: GenerationRequest, origin: GenerationOrigin, prompt: PromptTokens): Generation;
  /** Undoes `create` for a generation that never got to wait. */
  forget(generation: Generation): void;
  /** Starts it here now, in the free slot that suits its prompt best. */
  startHere(generation: Generation): void;
  limitQueueWait(generation: Generation): void;
  /** Ends a generation aborted while it waited. */
  endQueued(generation: Generation): void;
  /** Makes a job fronted by a peer reachable here by key and id. */
  adopt(generation: Generation): void;
  /** The cached tokens of each free slot, for the queue's prefix preference. */
  freeSlotCaches(): Array<readonly number[]>;
  /** Fills free slots from every queue. */
  dispatch(): void;
}

/**
 * A scheduler's half of a fleet's queue (`--redis`): a request that cannot start here at once waits in the shared
 * queue, and a free slot here takes the next job from it, whichever node took its request in.
 */
export class SharedDispatch {
  /** Slots promised to a job being taken from the shared queue (a round trip): nothing else may start in them. */
  private reserved = 0;
  private taking = false;

  constructor(
    private readonly shared: SharedQueue,
    private readonly host: DispatchHost,
    private readonly maxQueue: number,
  ) {
    shared.onWork(() => host.dispatch());
  }

  /** Free slots that no take in flight has claimed. */
  freeSlots(): number {
    return this.host.unreservedFreeSlots() - this.reserved;
  }

  holds(generation: Generation): boolean {
    return this.shared.holds(generation);
  }

  positionOf(generation: Generation): number {
    return this.shared.positionOf(generation);
  }

  /**
   * The request starts here at once when a slot is free, nothing waits anywhere in the fleet (so the fleet's
   * order holds) and its principal is under its max_concurrent across the fleet; else it waits in the shared
   * queue for whichever node frees a slot first, and for its principal to be under that cap.
   */
  async submit(request: GenerationRequest, origin: GenerationOrigin, prompt: PromptTokens): Promise<Generation> {
    const qos = origin.qos ?? DEFAULT_QOS;
    const generation = this.host.create(request, origin, prompt);
    if (this.freeSlots() > 0 && this.host.runningOf(origin.principal) < qos.maxConcurrent) {
      // The slot is promised to this request while Redis answers: nothing else may start in it meanwhile.
      this.reserved++;
      let claimed = false;
      try {
        claimed = await this.shared.claim(origin.principal, qos.maxConcurrent);
      } catch (error) {
        this.host.forget(generation);
        throw error;
      } finally {
        this.reserved--;
      }
      if (claimed) {
        this.host.startHere(generation);
        return generation;
      }
    }
    try {
      await this.shared.push(generation, this.maxQueue, (ended) => endedElsewhere(ended));
    } catch (error) {
      this.host.forget(generation);
      throw error;
    }
    this.host.limitQueueWait(generation);
    // A slot may have freed while the job was being queued: it takes the job (this one, or an older one).
    this.host.dispatch();
    return generation;
  }

  /** A generation that started here through the fleet's queue (or its claim) has ended. */
  ended(generation: Generation): void {
    this.shared.release(generation.origin.principal);
  }

  /** Out of the fleet's queue; when a node took it meanwhile, the shared queue has sent it the abort instead. */
  async withdraw(generation: Generation): Promise<void> {
    const withdrawn = await this.shared.withdraw(generation).catch(() => true);
    if (withdrawn) this.host.endQueued(generation);
  }

  /**
   * Shutdown: a keyed request waiting in the fleet's queue is handed back (another node runs it and its client
   * resumes it there by key); an anonymous one could not be found again, so it ends with the shutdown error.
   */
  drain(generations: Iterable<Generation>): void {
    for (const generation of generations) {
      if (!this.shared.holds(generation)) continue;
      if (generation.clientKey) this.shared.handBack(generation);
      else generation.abort('shutdown');
    }
  }

  /**
   * Fills free slots from the fleet's queue, one job at a time (each take is a round trip to Redis). A take that
   * fails (Redis away) leaves the job there for the next node, or for this one at the next sign of work.
   */
  async fill(): Promise<void> {
    if (this.taking) return;
    this.taking = true;
    try {
      // What is left in the node's own queue waits on its principal's max_concurrent, not on a slot.
      while (!this.host.isDraining() && this.freeSlots() > 0) {
        this.reserved++;
        let generation: Generation | undefined;
        try {
          generation = await this.shared.take(this.host.freeSlotCaches());
        } finally {
          this.reserved--;
        }
        if (!generation) break;
        this.host.adopt(generation);
        this.host.startHere(generation);
      }
    } catch {
      // Nothing was taken: the job is still in the shared queue.
    } finally {
      this.taking = false;
    }
  }
}

/** A generation fronted here that a peer ran has ended there: its quota is settled with what it used. */
function endedElsewhere(generation: Generation): void {
  const last = generation.log.last;
  const used = last?.type === 'finish' ? last.usage.promptTokens + last.usage.completionTokens : 0;
  generation.origin.qos?.quota?.settle(used);
}
