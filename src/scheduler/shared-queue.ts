import type { Generation } from './generation.ts';

/**
 * A queue that several schedulers share (a fleet's, in Redis: fleet/fleet-queue.ts), as the scheduler sees it.
 * With one, a request that cannot start at once on this node waits there instead of in the node's own queue, and
 * whichever node has a free slot first runs it: no node idles while another has work waiting.
 *
 * The node that took the request in is its front: it keeps the client's connection and the `Generation` the
 * routes read. When the front itself takes the job, that generation simply starts; when a peer takes it, the
 * queue copies the peer's log into it and sends its abort to the peer.
 */
export interface SharedQueue {
  /**
   * True when a request of `principal` may take a free slot here at once: nothing waits anywhere (so the order
   * holds) and the principal holds fewer than `maxConcurrent` slots across the fleet. The slot is then counted as
   * the principal's, until `release`.
   */
  claim(principal: string, maxConcurrent: number): Promise<boolean>;
  /** A generation of `principal` that started here through `claim` or `take` has ended. */
  release(principal: string): void;
  /**
   * Queues a generation this node fronts and logs its first `queued` part (its place in the whole queue);
   * throws the `queue_full` error past `maxQueue` waiting jobs, and `rate_limited` when its principal already has
   * its `maxQueued` waiting across the fleet. `ended` is told when a peer ran it and it ended.
   */
  push(generation: Generation, maxQueue: number, ended: (generation: Generation) => void): Promise<void>;
  /** True while `generation` (fronted here) still waits in the shared queue. */
  holds(generation: Generation): boolean;
  /** Its place in the whole queue, as last read (1 is next). */
  positionOf(generation: Generation): number;
  /**
   * Takes a fronted generation out of the queue (it was aborted while waiting): true when it was still there,
   * false when a node had already taken it (its abort then goes to that node).
   */
  withdraw(generation: Generation): Promise<boolean>;
  /**
   * The next job for a free slot here, or undefined when none waits whose principal is under its
   * `maxConcurrent` fleet-wide (its slot is then counted, until `release`). It is either a generation this node fronts,
   * or one a peer fronts, rebuilt here with its id, key, request and the parts logged so far.
   * `cached`: the tokens in this node's free slots, so a job whose prompt they begin may go first.
   */
  take(cached: ReadonlyArray<readonly number[]>): Promise<Generation | undefined>;
  /**
   * Shutdown: leaves a fronted generation waiting for another node to run (its client resumes it there, by key);
   * this node no longer follows it, and its local copy never ends.
   */
  handBack(generation: Generation): void;
  /** Called whenever a job may be waiting somewhere in the fleet (one was queued, or a node came back). */
  onWork(listener: () => void): void;
  /** Jobs waiting fleet-wide, as last read. */
  readonly length: number;
}
