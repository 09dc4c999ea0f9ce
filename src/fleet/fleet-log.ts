import type { LoggedPart } from '../core/logged-part.ts';
import type { Generation } from '../scheduler/generation.ts';
import { encodePart, entryId, fleetKeys } from './fleet-part.ts';
import { FRESH, STARTED } from './fleet-queue-scripts.ts';
import { keyHeldElsewhere, recordFields, recordOf } from './fleet-record.ts';
import type { RedisLink } from './redis-link.ts';
import { RemoteGeneration } from './remote-generation.ts';

export interface FleetLogOptions {
  /** This node's id (node-id.ts), written as each generation's owner. */
  nodeId: string;
  /** `--stream-grace`: how long a generation's log and record stay in Redis after it ends. */
  graceMs: number;
  /** Told when a write to Redis fails (the generation runs on; remote readers see a gap). */
  onWriteError?: (error: unknown) => void;
}

/**
 * While a generation runs no TTL of its own would be right (a queue wait or a long story has no bound): the
 * keys get this one, refreshed at every write, so a node that dies without ending them leaves nothing for ever.
 */
const LIVE_TTL_MS = 10 * 60_000;
/** A running generation's keys get their live TTL again after this long (it is minutes; no need every write). */
const REFRESH_TTL_MS = 60_000;
/**
 * How long parts wait to be written with the next ones. One slot decodes a token per turn of the event loop, and a
 * MULTI per token cost the event loop more than half again its work per token (bench/fleet.ts); this window
 * writes several tokens at once, and a reader on another node sees them at most this much later. Every other part
 * (queued, start, finish, error; and a node's close) writes at once.
 */
export const FLEET_WRITE_WINDOW_MS = 50;
/**
 * The window for a generation someone reads on another node (a peer runs the job its front took in, or a reader
 * touched it): a client there sees its text at most this much later than a local one, for about one MULTI every
 * two tokens of that generation at ~200 tokens/s.
 */
export const FOLLOWED_WRITE_WINDOW_MS = 10;

interface Pending {
  generation: Generation;
  parts: LoggedPart[];
  /** The record is written with the first batch only; later batches update its status. */
  fresh: boolean;
  /** Its first parts were written by the fleet's queue (fleet-queue.ts): this node takes the record over. */
  adopted: boolean;
  /** Its first write must confirm the take (the STARTED script): until then the job is not this node's to run. */
  confirm: boolean;
}

const logs = new WeakMap<RedisLink, FleetLog>();

/**
 * The fleet's copy of this node's generation logs, and the way to its peers' ones. Each generation's parts go
 * to the Redis stream `kindling:gen:<principal>:<key>:log` (entry id `0-<part id>`) and its record to the hash
 * `…:rec`. Parts are collected and written once per event-loop turn (setImmediate), all generations' parts of
 * one scheduler batch in one MULTI: one round trip a batch, never one a token. An abort for a generation this
 * node owns arrives on the `kindling:abort` channel from any node.
 */
export class FleetLog {
  private readonly pending = new Map<string, Pending>();
  /** Generations this node runs, by base key, until they end: what an abort from another node names. */
  private readonly owned = new Map<string, Generation>();
  private flushScheduled = false;
  private flushTimer: NodeJS.Timeout | undefined;
  /** What was last written of each running generation's record: its status, and when its TTL was renewed. */
  private readonly written = new Map<string, { status: string; renewedAt: number }>();
  /** Writes sent and not yet answered: shutdown waits for them before the link closes. */
  private readonly inFlight = new Set<Promise<void>>();
  /** Generations whose Redis copy the fleet's queue writes while they wait, or a peer writes while it runs them. */
  private readonly held = new WeakSet<Generation>();
  private readonly published = new WeakSet<Generation>();
  /** Taken jobs whose first write (STARTED) has not been answered: their next parts wait for it. */
  private readonly confirming = new Set<string>();
  private readonly toConfirm = new WeakSet<Generation>();
  /** Taken jobs that were put back in the queue before this node started them: they run elsewhere, not here. */
  private readonly fenced = new WeakSet<Generation>();
  private readonly followed = new WeakSet<Generation>();
  private flushAt = 0;
  private readonly onAbort = (base: string) => this.owned.get(base)?.abort('client');
  private readonly onTouch = (base: string) => {
    const generation = this.owned.get(base);
    if (!generation) return;
    this.followed.add(generation);
    generation.touch();
  };

  readonly nodeId: string;

  private constructor(
    private readonly link: RedisLink,
    private readonly options: FleetLogOptions,
  ) {
    this.nodeId = options.nodeId;
  }

  /** Starts the node's fleet log on `link` (subscribes to aborts); `FleetLog.of(link)` finds it afterwards. */
  static async start(link: RedisLink, options: FleetLogOptions): Promise<FleetLog> {
    const log = new FleetLog(link, options);
    await link.subscriber.subscribe(fleetKeys.abortChannel, log.onAbort);
    await link.subscriber.subscribe(fleetKeys.touchChannel, log.onTouch);
    logs.set(link, log);
    return log;
  }

  static of(link: RedisLink | undefined): FleetLog | undefined {
    return link ? logs.get(link) : undefined;
  }

  /**
   * Copies a generation this node runs to Redis, from its first part to its last; once per generation. `after`:
   * the parts up to that id are in Redis already (the fleet's queue wrote them), so the copy goes on from there.
   * `taken`: the fleet's queue gave this node the job, and its first write confirms that (STARTED); `followed`:
   * its client reads it on another node.
   */
  publish(
    generation: Generation,
    options: { after?: number; queue?: true; taken?: true; followed?: boolean } = {},
  ): void {
    if (this.held.has(generation) && !options.queue) return;
    if (this.published.has(generation)) return;
    this.published.add(generation);
    if (options.taken) this.toConfirm.add(generation);
    if (options.followed) this.followed.add(generation);
    const after = options.after ?? 0;
    const base = fleetKeys.base(generation.origin.principal, generation.key);
    this.owned.set(base, generation);
    let first = true;
    generation.log.observe((logged) => {
      if (logged.id <= after || this.fenced.has(generation)) return;
      let pending = this.pending.get(base);
      if (!pending) {
        pending = { generation, parts: [], fresh: false, adopted: false, confirm: false };
        this.pending.set(base, pending);
      }
      if (logged.id === 1) pending.fresh = true;
      if (first && after > 0) pending.adopted = true;
      if (first && this.toConfirm.has(generation)) pending.confirm = true;
      first = false;
      pending.parts.push(logged);
      // Text waits for the window; the rest (queued, start, finish, error) is written within this turn, so the
      // fleet knows at once that a key is taken, running or ended.
      const urgent = logged.part.type !== 'text-delta';
      this.scheduleFlush(urgent ? 0 : this.followed.has(generation) ? FOLLOWED_WRITE_WINDOW_MS : FLEET_WRITE_WINDOW_MS);
    });
  }

  /** One flush at a time is scheduled, at the soonest any pending part needs (0: within this turn). */
  private scheduleFlush(windowMs: number): void {
    const at = Date.now() + windowMs;
    if (this.flushScheduled && (this.flushTimer === undefined || this.flushAt <= at)) return;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.flushScheduled = true;
    this.flushAt = at;
    if (windowMs === 0) setImmediate(() => this.flush());
    else this.flushTimer = setTimeout(() => this.flush(), windowMs);
  }

  /** The fleet's queue writes this generation's copy while it waits (and a peer's while the peer runs it). */
  hold(generation: Generation): void {
    this.held.add(generation);
    // An abort from any node finds it here while it waits (and, once a peer runs it, is passed on to the peer).
    this.owned.set(fleetKeys.base(generation.origin.principal, generation.key), generation);
  }

  /** A held generation a peer ran has ended: aborts for its key are no longer this node's. */
  release(generation: Generation): void {
    const base = fleetKeys.base(generation.origin.principal, generation.key);
    if (this.owned.get(base) === generation) this.owned.delete(base);
  }

  /** A generation of `principal` by key or server id on any node, from Redis; undefined when none has it. */
  async find(principal: string, key: string): Promise<RemoteGeneration | undefined> {
    const base = await this.resolve(principal, key);
    if (!base) return undefined;
    const [record, entries] = await this.link.run((redis) =>
      redis.multi().hGetAll(fleetKeys.record(base.key)).xRange(fleetKeys.log(base.key), '-', '+').exec(),
    );
    const fields = record as unknown as Record<string, string>;
    if (!fields || fields['node'] === undefined || (base.byServerId && fields['id'] !== key)) return undefined;
    const remote = new RemoteGeneration(this.link, base.key, recordOf(fields), (entries ?? []) as never);
    // An owner that died mid-generation left it "running" until its log expires: a /check says how it ended.
    if (!remote.log.ended && fields['node'] !== this.nodeId && !(await remote.ownerAlive())) remote.ownerLost();
    return remote;
  }

  /**
   * Fails with the link's 503 while Redis is unreachable: a new generation on a fleet node must not run with a
   * log that reaches no one (no round trip; the link knows its state).
   */
  assertReachable(): void {
    if (!this.link.ready) throw this.link.unavailable();
  }

  /** Asks the owner of a running generation to abort it; true when one ran (as a local abort says). */
  async abort(principal: string, key: string): Promise<boolean> {
    const base = await this.resolve(principal, key);
    if (!base) return false;
    const [status, id] = await this.link.run((redis) => redis.hmGet(fleetKeys.record(base.key), ['status', 'id']));
    if (!status || status === 'done' || (base.byServerId && id !== key)) return false;
    await this.link.run((redis) => redis.publish(fleetKeys.abortChannel, base.key));
    return true;
  }

  /** After the node drained: its generations' last parts reach Redis before the link closes. */
  async close(): Promise<void> {
    logs.delete(this.link);
    // Twice at most: a taken job's first write is answered before its later parts go.
    for (let round = 0; round < 2; round++) {
      if (this.pending.size > 0) await this.flush();
      await Promise.allSettled([...this.inFlight]);
    }
    await this.link.subscriber.unsubscribe(fleetKeys.abortChannel, this.onAbort).catch(() => {});
    await this.link.subscriber.unsubscribe(fleetKeys.touchChannel, this.onTouch).catch(() => {});
  }

  /**
   * The base key `key` names for `principal`: a server id's alias, else the principal's own key. A client key
   * reused after its generation ended moves to the new generation, so a server id found through an alias must
   * still be the record's id (callers check `byServerId`).
   */
  private async resolve(principal: string, key: string): Promise<{ key: string; byServerId: boolean } | undefined> {
    const scoped = fleetKeys.base(principal, key);
    const [byId, exists] = await this.link.run((redis) =>
      redis.multi().get(fleetKeys.serverId(key)).exists(fleetKeys.record(scoped)).exec(),
    );
    if (typeof byId === 'string') return { key: byId, byServerId: true };
    return Number(exists) > 0 ? { key: scoped, byServerId: false } : undefined;
  }

  private async flush(): Promise<void> {
    this.flushScheduled = false;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    // A taken job's later parts wait for its first write's answer: if the take was lost, they must not go in.
    const batch = [...this.pending.entries()].filter(([base]) => !this.confirming.has(base));
    for (const [base] of batch) this.pending.delete(base);
    if (batch.length === 0) return;
    if (!this.link.commands.isReady) {
      this.options.onWriteError?.(this.link.unavailable());
      // A take this node cannot confirm is not its to run: the job stays taken until its record expires.
      for (const [base, { generation, confirm }] of batch) if (confirm) this.fence(base, generation);
      return;
    }
    const multi = this.link.commands.multi();
    for (const [base, { generation, parts, fresh, adopted, confirm }] of batch) {
      const log = fleetKeys.log(base);
      const record = fleetKeys.record(base);
      const ended = parts.some(({ part }) => part.type === 'finish' || part.type === 'error');
      const ttl = ended ? Math.max(1, this.options.graceMs) : LIVE_TTL_MS + this.options.graceMs;
      const status = ended ? 'done' : generation.status;
      const now = Date.now();
      const last = fresh ? undefined : this.written.get(base);
      const renew = ended || last === undefined || now - last.renewedAt >= REFRESH_TTL_MS;
      if (fresh && generation.clientKey && !confirm) {
        // The key must be free fleet-wide (FRESH): its later parts wait for the answer, as a taken job's do.
        this.confirmFresh(base, generation, parts, status, ttl);
      } else if (fresh) {
        // A client key reused after its generation ended: the new generation's log starts again at 0-1.
        multi.del([log, record]);
        multi.hSet(record, recordFields(generation, this.nodeId));
        multi.set(fleetKeys.serverId(generation.id), base, { PX: ttl });
      } else if (adopted) {
        multi.hSet(record, 'node', this.nodeId);
        multi.pExpire(fleetKeys.serverId(generation.id), ttl);
      } else if (renew) {
        multi.pExpire(fleetKeys.serverId(generation.id), ttl);
      }
      if (confirm) {
        this.confirmStart(base, generation, parts, status, ttl);
      } else if (fresh && generation.clientKey) {
        // Written by FRESH above.
      } else {
        for (const { id, part } of parts) multi.xAdd(log, entryId(id), { p: encodePart(part) });
        if (last?.status !== status) multi.hSet(record, 'status', status);
        if (renew) {
          multi.pExpire(log, ttl);
          multi.pExpire(record, ttl);
        }
      }
      if (ended) {
        this.owned.delete(base);
        this.written.delete(base);
      } else {
        this.written.set(base, { status, renewedAt: renew ? now : (last?.renewedAt ?? now) });
      }
    }
    const write = multi.exec().then(
      () => {},
      (error: unknown) => this.options.onWriteError?.(error),
    );
    this.inFlight.add(write);
    await write;
    this.inFlight.delete(write);
  }

  /**
   * A taken job's first write, through STARTED: its parts go in only while the job is still this node's. Sent in
   * the same turn as the batch's MULTI, so it costs no round trip of its own.
   */
  private confirmStart(
    base: string,
    generation: Generation,
    parts: readonly LoggedPart[],
    status: string,
    ttl: number,
  ): void {
    this.confirming.add(base);
    const args = ['', base, this.nodeId, String(ttl), status, generation.id];
    for (const { id, part } of parts) args.push(entryId(id), encodePart(part));
    const write = this.link.commands.eval(STARTED, { arguments: args }).then(
      (started) => {
        this.confirming.delete(base);
        if (Number(started) !== 1) this.fence(base, generation);
        else if (this.pending.has(base)) this.scheduleFlush(0);
      },
      (error: unknown) => {
        this.confirming.delete(base);
        this.options.onWriteError?.(error);
        this.fence(base, generation);
      },
    );
    this.inFlight.add(write);
    void write.finally(() => this.inFlight.delete(write));
  }

  /**
   * A keyed generation's first write, through FRESH: it goes in only while no other live node holds the key (two
   * requests with one key started on two nodes at the same moment). Sent in the batch's turn, like STARTED.
   */
  private confirmFresh(
    base: string,
    generation: Generation,
    parts: readonly LoggedPart[],
    status: string,
    ttl: number,
  ): void {
    this.confirming.add(base);
    const fields = Object.entries(recordFields(generation, this.nodeId)).flat();
    const args = ['', base, this.nodeId, String(ttl), status, generation.id, String(fields.length), ...fields];
    for (const { id, part } of parts) args.push(entryId(id), encodePart(part));
    const write = this.link.commands.eval(FRESH, { arguments: args }).then(
      (answer) => {
        this.confirming.delete(base);
        if (answer === 1) {
          if (this.pending.has(base)) this.scheduleFlush(0);
          return;
        }
        this.stopHere(base, generation);
        generation.fail(keyHeldElsewhere(generation.key, String(answer)));
      },
      (error: unknown) => {
        // Redis did not answer: the generation runs on as any whose write failed (readers elsewhere see a gap).
        this.confirming.delete(base);
        this.options.onWriteError?.(error);
        if (this.pending.has(base)) this.scheduleFlush(0);
      },
    );
    this.inFlight.add(write);
    void write.finally(() => this.inFlight.delete(write));
  }

  /** The job went back to the queue before this node's first write (its heartbeat had expired): it stops here. */
  private fence(base: string, generation: Generation): void {
    this.stopHere(base, generation);
    generation.abort('client');
  }

  /** Nothing more of this generation goes to Redis: its key's log there is another node's. */
  private stopHere(base: string, generation: Generation): void {
    this.fenced.add(generation);
    this.pending.delete(base);
    this.written.delete(base);
    if (this.owned.get(base) === generation) this.owned.delete(base);
  }
}
