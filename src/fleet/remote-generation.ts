import type { GenerationView } from '../core/generation-view.ts';
import { KindlingError } from '../core/kindling-error.ts';
import type { StopReason } from '../core/stop-reason.ts';
import { GenerationLog } from '../stream/generation-log.ts';
import { decodePart, fleetKeys, partIdOf } from './fleet-part.ts';
import { RECLAIM } from './fleet-queue-scripts.ts';
import { lifeKeys } from './membership.ts';
import type { RedisConnection, RedisLink } from './redis-link.ts';

/** The record a generation's owner keeps in Redis next to its log (fleet-log.ts writes it). */
export interface FleetRecord {
  node: string;
  id: string;
  protocol: string;
  status: 'queued' | 'running' | 'done';
  createdAt: number;
  promptTokens: number[];
  /** The request's `logprobs` (top alternatives a token), 0 without. */
  logprobs: number;
  /** The owner's resume window for this generation (ms): how often a remote reader must touch it. */
  resumeWindowMs: number;
  /** The decoded request's fingerprint (request-fingerprint.ts): a re-sent identical request reattaches. */
  fingerprint: string;
}

/**
 * How often a follower tells the owner it still reads, as a share of the owner's `--resume-window`: the owner
 * then never aborts a keyed generation whose only reader is on another node. The blocking read waits no longer,
 * so a follower wakes to touch even while the generation sits in the queue.
 */
const touchEveryMs = (resumeWindowMs: number) => Math.max(50, Math.min(1000, resumeWindowMs / 3));

/** The error a reader gets when the generation's owner died (its heartbeat expired) before ending it. */
export function lostOwnerError(node: string): KindlingError {
  return new KindlingError(
    'unavailable',
    `Fleet node ${node}, which ran this generation, stopped (its heartbeat expired) before the generation ended; start it again.`,
  );
}

/**
 * A generation running on another node, seen through its Redis log: a GenerationView for /check and the
 * encoders, and, once `follow()` runs, a live copy of the owner's log that the stream writer reads like a local
 * one (it offers what streamGeneration uses of a Generation: id, log, attachReader, endDelivered).
 */
export class RemoteGeneration implements GenerationView {
  readonly log = new GenerationLog();
  readonly id: string;
  readonly createdAt: number;
  readonly promptTokens: readonly number[];
  readonly request: { logprobs: number };
  readonly protocol: string;
  /** The node that runs it (or, while it waits in the fleet's queue, its front); a take or a reclaim moves it. */
  node: string;
  readonly fingerprint: string;
  endDelivered = false;
  private readonly recordStatus: FleetRecord['status'];
  private lastEntry = '0-0';
  private readers = 0;
  private reader: RedisConnection | undefined;
  private stopped = false;
  private touchedAt = 0;
  private readonly touchEvery: number;

  constructor(
    private readonly link: RedisLink,
    private readonly base: string,
    record: FleetRecord,
    entries: ReadonlyArray<{ id: string; message: Record<string, string> }>,
  ) {
    this.id = record.id;
    this.createdAt = record.createdAt;
    this.promptTokens = record.promptTokens;
    this.request = { logprobs: record.logprobs };
    this.protocol = record.protocol;
    this.node = record.node;
    this.fingerprint = record.fingerprint;
    this.touchEvery = touchEveryMs(record.resumeWindowMs);
    this.recordStatus = record.status;
    this.appendEntries(entries);
  }

  get status(): FleetRecord['status'] {
    if (this.log.ended) return 'done';
    return this.log.partsAfter(0).some(({ part }) => part.type === 'start') ? 'running' : this.recordStatus;
  }

  get stopReason(): StopReason | undefined {
    const last = this.log.last;
    return last?.type === 'finish' ? last.reason : last?.type === 'error' ? 'error' : undefined;
  }

  /** The owner's last reported queue place, 0 once it runs. */
  get queuePosition(): number {
    if (this.status !== 'queued') return 0;
    const queued = this.log.partsAfter(0).findLast(({ part }) => part.type === 'queued');
    return queued?.part.type === 'queued' ? queued.part.position : 0;
  }

  /** Proof someone still wants the result (a /check poll, a follower): the owner restarts its resume window. */
  touch(): void {
    this.touchedAt = Date.now();
    this.link.run((redis) => redis.publish(fleetKeys.touchChannel, this.base)).catch(() => {});
  }

  /** While a reader is attached the follower runs; when the last one leaves it stops (the owner runs on). */
  attachReader(): () => void {
    this.readers++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.readers--;
      if (this.readers === 0) this.stop();
    };
  }

  /**
   * Follows the owner's log live, from where the snapshot ended, until its final part. A blocking XREAD ties
   * up its connection, so each follower reads on a connection of its own (duplicated from the link's): a
   * cross-node resume is rare next to local streams, and one connection a reader keeps one reader's blocking
   * from delaying another's parts, with no fan-out code to get wrong.
   */
  async follow(): Promise<void> {
    if (this.log.ended || this.reader) return;
    const reader = this.link.commands.duplicate();
    reader.on('error', () => {});
    this.reader = reader;
    try {
      await reader.connect();
      while (!this.stopped && !this.log.ended) {
        if (Date.now() - this.touchedAt >= this.touchEvery) this.touch();
        const reply = await reader.xRead(
          { key: fleetKeys.log(this.base), id: this.lastEntry },
          { BLOCK: this.touchEvery },
        );
        const entries = streamEntries(reply);
        if (entries.length > 0) this.appendEntries(entries);
        else if (!this.stopped) await this.checkOwner();
      }
    } catch (error) {
      if (!this.stopped) this.fail(this.link.unavailable(error));
    } finally {
      this.stop();
    }
  }

  /**
   * Asked only when a blocking read came back empty (at most once a touch interval, never per token): a log
   * gone from Redis, or an owner whose heartbeat expired, would otherwise keep the reader waiting until the
   * log's own TTL.
   */
  private async checkOwner(): Promise<void> {
    const [log, node] = await this.link.run((redis) =>
      redis.multi().exists(fleetKeys.log(this.base)).hGet(fleetKeys.record(this.base), 'node').exec(),
    );
    if (this.log.ended) return;
    if (typeof node === 'string' && node) this.node = node;
    if (Number(log) === 0) {
      this.fail(new KindlingError('unavailable', `The generation's log on node ${this.node} is gone from Redis.`));
      return;
    }
    if (await this.ownerAlive()) return;
    if (!this.log.ended) this.ownerLost();
  }

  /**
   * Whether someone still answers for this generation: its node beats, or it is (back) in the fleet's queue: a
   * job whose taker died before starting it goes back (RECLAIM), and a keyed one waits on when its front died.
   */
  async ownerAlive(): Promise<boolean> {
    const alive = await this.link.run((redis) => redis.exists(lifeKeys(this.node)));
    if (Number(alive) > 0) return true;
    const now = await this.link.run((redis) => redis.eval(RECLAIM, { arguments: ['', this.base] }));
    return now === 'waiting' || now === 'requeued' || now === 'taken';
  }

  /** Ends the copy with the lost-owner error (a follower, or a /check that found the owner gone). */
  ownerLost(): void {
    if (!this.log.ended) this.fail(lostOwnerError(this.node));
  }

  private stop(): void {
    this.stopped = true;
    const reader = this.reader;
    this.reader = undefined;
    if (reader?.isOpen) reader.destroy();
  }

  private fail(error: KindlingError): void {
    this.log.append({ type: 'error', error });
  }

  private appendEntries(entries: ReadonlyArray<{ id: string; message: Record<string, string> }>): void {
    for (const { id, message } of entries) {
      if (this.log.ended) return;
      this.lastEntry = id;
      // A write the owner lost (Redis was away) leaves a hole: the ids after it would name the wrong parts, and
      // a resumed text must never be wrong, so the stream ends with an error instead.
      if (partIdOf(id) !== this.log.lastId + 1 || message['p'] === undefined) {
        this.fail(
          new KindlingError(
            'unavailable',
            `The fleet's log of this generation (on node ${this.node}) lost parts while Redis was unreachable.`,
          ),
        );
        return;
      }
      this.log.append(decodePart(message['p']));
    }
  }
}

/** The entries of an XREAD reply for one key (RESP2's array form; null when the block timed out). */
function streamEntries(reply: unknown): Array<{ id: string; message: Record<string, string> }> {
  if (!Array.isArray(reply)) return [];
  const first = reply[0] as { messages?: Array<{ id: string; message: Record<string, string> }> } | undefined;
  return first?.messages ?? [];
}
