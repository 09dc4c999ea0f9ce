import { KindlingError } from '../core/kindling-error.ts';
import type { ModelInfo } from '../core/model-info.ts';
import { BATCH_AGING_MS, DEFAULT_QOS } from '../scheduler/fair-queue.ts';
import type { Generation } from '../scheduler/generation.ts';
import type { SharedQueue } from '../scheduler/shared-queue.ts';
import { decodeJob, encodeJob, prefixHashes } from './fleet-job.ts';
import type { FleetLog } from './fleet-log.ts';
import { decodePart, encodePart, entryId, fleetKeys, partIdOf } from './fleet-part.ts';
import { CLAIM, PLACES, PUSH, RELEASE, RUNNING, TAKE, UNRUNNABLE, WITHDRAW } from './fleet-queue-scripts.ts';
import { keyHeldElsewhere, recordFields } from './fleet-record.ts';
import type { RedisLink } from './redis-link.ts';
import { type FleetRecord, RemoteGeneration } from './remote-generation.ts';

export interface FleetQueueOptions {
  nodeId: string;
  model: ModelInfo;
  /** How long a waiting job's keys live in Redis without being taken (the queue wait limit, else an hour). */
  jobTtlMs?: number;
  batchAgingMs?: number;
  /** How often this node re-reads the places of the jobs it fronts, and looks for work it missed. */
  refreshMs?: number;
}

/**
 * How long the head of the queue may be passed over for a job whose prompt a free slot has cached: the most a
 * prefix preference delays any job. Within it, a node looks at the first `PREFER_WINDOW` jobs.
 */
export const PREFER_MS = 250;
const PREFER_WINDOW = 4;
const WORK_CHANNEL = (queue: string) => `${queue}:work`;
const TAKEN_CHANNEL = 'kindling:taken';

/**
 * One model's queue, shared by every node of the fleet that serves it (the scheduler's SharedQueue, in Redis).
 * Jobs wait in Redis in the order one node's fair queue would give them (start-time fair queueing across
 * principals, interactive before batch with aging, arrival order last), and the first node with a free slot
 * takes the next one (fleet-queue-scripts.ts). The node that took the request in stays its front: it keeps the
 * `Generation` its routes read, takes its own jobs like any other, and follows a peer's log when a peer took it.
 */
export class FleetQueue implements SharedQueue {
  /** The jobs this node fronts while they wait, by base key. */
  private readonly fronted = new Map<string, { generation: Generation; ended: (g: Generation) => void }>();
  private readonly places = new Map<Generation, number>();
  private readonly listeners: Array<() => void> = [];
  private readonly key: string;
  private waiting = 0;
  private timer: NodeJS.Timeout | undefined;
  private refreshing = false;
  /** The slots each principal holds on this node through a claim or a take (Redis's count is rewritten from it). */
  private readonly held = new Map<string, number>();
  /** Claims and takes awaiting their answer: Redis may count a slot this node does not know of yet. */
  private counting = 0;
  private countsWritten = true;
  private readonly onWorkMessage = () => this.signalWork();
  private readonly onTakenMessage = (message: string) => this.onTaken(message);

  private constructor(
    private readonly link: RedisLink,
    private readonly log: FleetLog,
    private readonly options: FleetQueueOptions,
  ) {
    this.key = `kindling:q:${encodeURIComponent(`${options.model.name}#${options.model.vocabularySize}`)}`;
  }

  static async start(link: RedisLink, log: FleetLog, options: FleetQueueOptions): Promise<FleetQueue> {
    const queue = new FleetQueue(link, log, options);
    await link.subscriber.subscribe(WORK_CHANNEL(queue.key), queue.onWorkMessage);
    await link.subscriber.subscribe(TAKEN_CHANNEL, queue.onTakenMessage);
    queue.timer = setInterval(() => void queue.refresh(), options.refreshMs ?? 500);
    queue.timer.unref();
    return queue;
  }

  get length(): number {
    return this.waiting;
  }

  onWork(listener: () => void): void {
    this.listeners.push(listener);
  }

  holds(generation: Generation): boolean {
    return this.fronted.get(this.baseOf(generation))?.generation === generation;
  }

  positionOf(generation: Generation): number {
    return this.places.get(generation) ?? 0;
  }

  async claim(principal: string, maxConcurrent: number): Promise<boolean> {
    this.counting++;
    try {
      const [claimed, waiting] = (await this.link.run((redis) =>
        redis.eval(CLAIM, { arguments: [this.key, this.options.nodeId, principal, limitArgument(maxConcurrent)] }),
      )) as [number, number];
      this.waiting = waiting;
      if (claimed === 1) this.hold(principal);
      return claimed === 1;
    } finally {
      this.counting--;
    }
  }

  release(principal: string): void {
    const left = (this.held.get(principal) ?? 0) - 1;
    if (left > 0) this.held.set(principal, left);
    else this.held.delete(principal);
    this.link
      .run((redis) => redis.eval(RELEASE, { arguments: [this.key, this.options.nodeId, principal] }))
      .then(() => this.link.run((redis) => redis.publish(WORK_CHANNEL(this.key), '1')))
      .catch(() => {});
  }

  private hold(principal: string): void {
    this.held.set(principal, (this.held.get(principal) ?? 0) + 1);
  }

  async push(generation: Generation, maxQueue: number, ended: (generation: Generation) => void): Promise<void> {
    const base = this.baseOf(generation);
    const qos = generation.origin.qos ?? DEFAULT_QOS;
    const ttl = this.options.jobTtlMs ?? 3_600_000;
    this.log.hold(generation);
    // Fronted before Redis has it: a node may take it (and say so) before this call returns.
    this.fronted.set(base, { generation, ended });
    const fields = Object.entries(recordFields(generation, this.options.nodeId)).flat();
    const reply = (await this.link
      .run((redis) =>
        redis.eval(PUSH, {
          arguments: [
            this.key,
            base,
            this.options.nodeId,
            String(Date.now()),
            String(qos.weight),
            qos.priority,
            String(Number.isFinite(maxQueue) ? maxQueue : 1e15),
            encodeJob(generation),
            `,${prefixHashes(generation.promptTokens).join(',')},`,
            generation.origin.principal,
            String(ttl),
            generation.id,
            generation.clientKey ? '1' : '0',
            limitArgument(qos.maxConcurrent),
            limitArgument(qos.maxQueued),
            ...fields,
          ],
        }),
      )
      .catch((error: unknown) => {
        this.fronted.delete(base);
        throw error;
      })) as [number, number];
    const [place, waiting] = reply;
    if (place === -3) {
      this.fronted.delete(base);
      throw keyHeldElsewhere(generation.key, String(waiting));
    }
    if (place === -2) {
      this.fronted.delete(base);
      throw new KindlingError(
        'rate_limited',
        `This key already has ${waiting} request${waiting === 1 ? '' : 's'} waiting in the fleet (its max_queued); try again once one has started.`,
        { retryAfterSeconds: 1 },
      );
    }
    this.waiting = waiting;
    if (place < 0) {
      this.fronted.delete(base);
      throw new KindlingError(
        'queue_full',
        `The fleet is busy: ${waiting} requests are waiting for a slot on its nodes. Try again shortly.`,
        { retryAfterSeconds: 2 },
      );
    }
    this.places.set(generation, place);
    // The part Redis logged as 0-1, logged here too (unless a take already copied it): the same ids on both.
    if (generation.log.lastId === 0) generation.emit({ type: 'queued', position: place });
    this.link.run((redis) => redis.publish(WORK_CHANNEL(this.key), '1')).catch(() => {});
  }

  async withdraw(generation: Generation): Promise<boolean> {
    const base = this.baseOf(generation);
    const removed = await this.link.run((redis) => redis.eval(WITHDRAW, { arguments: [this.key, base] }));
    if (Number(removed) !== 1) return false;
    this.fronted.delete(base);
    this.places.delete(generation);
    // Its end (written by the scheduler next) goes to Redis like any part of a generation this node owns.
    this.log.publish(generation, { after: generation.log.lastId, queue: true });
    return true;
  }

  async take(cached: ReadonlyArray<readonly number[]>): Promise<Generation | undefined> {
    const mine = new Set(cached.flatMap((tokens) => prefixHashes(tokens)));
    // Counted until this node counts the slot itself (synchronously after the answer), so no refresh between
    // the two rewrites Redis's count without it.
    this.counting++;
    let reply: string[] | null;
    try {
      reply = (await this.link.run((redis) =>
        redis.eval(TAKE, {
          arguments: [
            this.key,
            this.options.nodeId,
            String(Date.now()),
            String(this.options.batchAgingMs ?? BATCH_AGING_MS),
            String(PREFER_MS),
            String(PREFER_WINDOW),
            `,${[...mine].join(',')},`,
          ],
        }),
      )) as string[] | null;
    } finally {
      this.counting--;
    }
    if (!reply) return undefined;
    const [base, front, data] = reply as [string, string, string];
    const own = front === this.options.nodeId ? this.fronted.get(base) : undefined;
    if (own) {
      this.fronted.delete(base);
      this.places.delete(own.generation);
    }
    const generation = own?.generation ?? (await this.decodeOrEnd(base, data));
    if (!generation) return undefined;
    this.hold(generation.origin.principal);
    // The parts Redis has and this copy not yet (all of them, for a peer's job).
    for (let i = 3; i + 1 < reply.length; i += 2) {
      if (partIdOf(reply[i] as string) > generation.log.lastId) generation.emit(decodePart(reply[i + 1] as string));
    }
    this.log.publish(generation, { after: generation.log.lastId, queue: true, taken: true, followed: !own });
    if (own) return generation;
    this.link
      .run((redis) => redis.publish(TAKEN_CHANNEL, JSON.stringify({ base, node: this.options.nodeId })))
      .catch(() => {});
    return generation;
  }

  /**
   * A peer's job as this node rebuilds it; one it cannot read (written by another version) ends with an error
   * its client sees, instead of staying taken until it expires.
   */
  private async decodeOrEnd(base: string, data: string): Promise<Generation | undefined> {
    try {
      return decodeJob(data);
    } catch (error) {
      const message = `Fleet node ${this.options.nodeId} took this request from the queue but could not read it (${error instanceof Error ? error.message : String(error)}); are the nodes running different versions? Send it again.`;
      const part = JSON.stringify({ type: 'error', error: { code: 'unavailable', message } });
      await this.link.run((redis) => redis.eval(UNRUNNABLE, { arguments: [this.key, base, part] })).catch(() => {});
      return undefined;
    }
  }

  handBack(generation: Generation): void {
    const base = this.baseOf(generation);
    if (this.fronted.get(base)?.generation !== generation) return;
    this.fronted.delete(base);
    this.places.delete(generation);
    this.log.release(generation);
  }

  /** Stops taking work; the jobs it fronts stay in Redis until the scheduler's drain withdraws them. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.link.subscriber.unsubscribe(WORK_CHANNEL(this.key), this.onWorkMessage).catch(() => {});
    await this.link.subscriber.unsubscribe(TAKEN_CHANNEL, this.onTakenMessage).catch(() => {});
  }

  private baseOf(generation: Generation): string {
    return fleetKeys.base(generation.origin.principal, generation.key);
  }

  private signalWork(): void {
    for (const listener of this.listeners) listener();
  }

  private onTaken(message: string): void {
    let taken: { base?: string; node?: string };
    try {
      taken = JSON.parse(message) as typeof taken;
    } catch {
      return;
    }
    if (taken.base && taken.node && taken.node !== this.options.nodeId) this.follow(taken.base, taken.node);
  }

  /**
   * A peer took a job this node fronts: the front's generation becomes a copy of the peer's log (the parts after
   * the ones both have), its status follows it, and its abort (the client left, `/abort` here) goes to the peer.
   */
  private follow(base: string, node: string): void {
    const front = this.fronted.get(base);
    if (!front) return;
    this.fronted.delete(base);
    const { generation, ended } = front;
    this.places.delete(generation);
    generation.status = 'running';
    const entries = generation.log
      .partsAfter(0)
      .map(({ id, part }) => ({ id: entryId(id), message: { p: encodePart(part) } }));
    const record: FleetRecord = {
      node,
      id: generation.id,
      protocol: generation.origin.protocol,
      status: 'running',
      createdAt: generation.createdAt,
      promptTokens: [...generation.promptTokens],
      logprobs: generation.request.logprobs ?? 0,
      resumeWindowMs: generation.resumeWindowMs,
      fingerprint: generation.fingerprint,
    };
    const remote = new RemoteGeneration(this.link, base, record, entries);
    const release = remote.attachReader();
    const abort = () => this.link.run((redis) => redis.publish(fleetKeys.abortChannel, base)).catch(() => {});
    generation.signal.addEventListener('abort', abort, { once: true });
    if (generation.signal.aborted) abort();
    void remote.follow();
    void (async () => {
      for await (const batch of remote.log.read(generation.log.lastId)) {
        for (const { id, part } of batch) if (id > generation.log.lastId) generation.emit(part);
      }
      release();
      generation.signal.removeEventListener('abort', abort);
      generation.status = 'done';
      generation.finishedAt = Date.now();
      this.log.release(generation);
      ended(generation);
    })();
  }

  /**
   * Re-reads the places of the jobs this node fronts (a new `queued` part where one moved), notices a take whose
   * message was lost, and looks for work when there is some (a slot may have freed without a message).
   */
  private async refresh(): Promise<void> {
    if (this.refreshing || !this.link.ready) return;
    this.refreshing = true;
    try {
      const fronted = [...this.fronted.entries()];
      const args = fronted.flatMap(([base, { generation }]) => [base, String(generation.log.lastId)]);
      const reply = (await this.link.run((redis) => redis.eval(PLACES, { arguments: [this.key, ...args] }))) as Array<
        number | string
      >;
      this.waiting = Number(reply[0]);
      fronted.forEach(([base, { generation }], i) => {
        const answer = reply[i + 1];
        if (this.fronted.get(base)?.generation !== generation) return;
        if (typeof answer === 'string') {
          if (answer && answer !== this.options.nodeId) this.follow(base, answer);
          return;
        }
        const place = Math.abs(Number(answer));
        if (place > 0) this.places.set(generation, place);
        if (Number(answer) > 0) generation.emit({ type: 'queued', position: place });
      });
      if (this.waiting > 0) this.signalWork();
      // An idle node writes its (empty) count once, not at every refresh; a count left by a lost answer
      // expires on its own.
      if (this.counting === 0 && (this.held.size > 0 || this.countsWritten)) {
        const counts = [...this.held].flatMap(([principal, n]) => [principal, String(n)]);
        this.countsWritten = counts.length > 0;
        await this.link.run((redis) => redis.eval(RUNNING, { arguments: [this.key, this.options.nodeId, ...counts] }));
      }
    } catch {
      // Redis away: the places stay as they were; the link logs the outage.
    } finally {
      this.refreshing = false;
    }
  }
}

/** A limit as the scripts read it: '' for none. */
function limitArgument(limit: number): string {
  return Number.isFinite(limit) ? String(limit) : '';
}
