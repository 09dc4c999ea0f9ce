import type { RedisConnection, RedisLink } from './redis-link.ts';

/** A model as `/v1/models` shows it. */
export interface FleetModel {
  id: string;
  name: string;
  context_size: number;
}

/** What a node says about its load at each heartbeat. */
export interface NodeLoad {
  models: FleetModel[];
  slots: number;
  busy: number;
  queued: number;
}

/** One member as Redis holds it (`kindling:node:<id>`). */
export interface NodeRecord extends NodeLoad {
  id: string;
  address: string;
  /** (busy + queued) / slots: above 1, requests wait. */
  load: number;
  started_at: number;
  heartbeat_at: number;
}

export interface MembershipOptions {
  id: string;
  /** The URL this node listens on, for the other nodes and the operator. */
  address: string;
  load: () => NodeLoad;
  intervalMs?: number;
  /** A member whose heartbeat is older than this is gone; a few intervals, so one slow beat is not a death. */
  ttlMs?: number;
}

export const MEMBERS_KEY = 'kindling:nodes';
export const nodeKey = (id: string) => `kindling:node:${id}`;
/**
 * A node's proof of life for the owners' readers, apart from its listing: a draining node leaves the listing
 * at once (no new work for it) but still finishes its generations, and their readers on other nodes must not
 * take it for dead until its last parts are in Redis.
 */
export const aliveKey = (id: string) => `kindling:alive:${id}`;
/** The keys whose existence says node `id` lives: its listing counts too, for a peer older than the alive key. */
export const lifeKeys = (id: string) => [aliveKey(id), nodeKey(id)];

const memberships = new WeakMap<RedisLink, Membership>();

/** The membership running on this link, for the routes (absent until main.ts starts it). */
export function membershipOf(link: RedisLink | undefined): Membership | undefined {
  return link ? memberships.get(link) : undefined;
}

/**
 * This node's entry in the fleet: a key with a TTL that each heartbeat writes again, and a sorted set of ids
 * (score: last heartbeat) to list them. A node that dies stops beating and its key expires; the next listing
 * drops it from the set. A heartbeat never throws: while Redis is down it is skipped (main.ts logs the outage
 * once through `RedisLink.watch`), and the first beat after Redis is back registers the node again, so a Redis
 * restarted empty relearns every live node within one interval.
 */
export class Membership {
  readonly id: string;
  readonly address: string;
  readonly intervalMs: number;
  readonly ttlMs: number;
  private readonly startedAt = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;
  private closed = false;
  private released = false;

  constructor(
    private readonly link: RedisLink,
    private readonly options: MembershipOptions,
  ) {
    this.id = options.id;
    this.address = options.address;
    this.intervalMs = options.intervalMs ?? 1000;
    this.ttlMs = options.ttlMs ?? 3 * this.intervalMs;
  }

  /** Registers now and then at every interval. */
  async start(): Promise<void> {
    memberships.set(this.link, this);
    this.link.watch((state) => {
      if (state === 'ready' && !this.released) void this.beat();
    });
    this.timer = setInterval(() => void this.beat(), this.intervalMs);
    this.timer.unref();
    await this.beat();
  }

  /** Stops the heartbeat without deregistering (what a frozen or killed node looks like to the others). */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** This node's record as it is now. */
  record(now = Date.now()): NodeRecord {
    const load = this.options.load();
    return {
      id: this.id,
      address: this.address,
      ...load,
      load: load.slots > 0 ? Math.round(((load.busy + load.queued) / load.slots) * 100) / 100 : 0,
      started_at: this.startedAt,
      heartbeat_at: now,
    };
  }

  /** The live members, this one included, oldest first; fails with the link's 503 while Redis is down. */
  async nodes(): Promise<NodeRecord[]> {
    return this.link.run((redis) => liveNodes(redis, this.ttlMs));
  }

  /**
   * Deregisters at once (shutdown), so no one counts on this node while it drains; its alive key beats on
   * until `release()`, once its generations' last parts are in Redis.
   */
  async close(): Promise<void> {
    this.closed = true;
    if (memberships.get(this.link) === this) memberships.delete(this.link);
    await this.bounded(
      (async () => {
        await this.beating;
        await this.link.run((redis) => redis.multi().del(nodeKey(this.id)).zRem(MEMBERS_KEY, this.id).exec());
      })(),
    );
  }

  /** The end of shutdown: no more beats, and readers elsewhere of anything left running see this node gone. */
  async release(): Promise<void> {
    if (!this.closed) await this.close();
    this.released = true;
    this.stop();
    await this.bounded(
      (async () => {
        await this.beating;
        await this.link.run((redis) => redis.del(aliveKey(this.id)));
      })(),
    );
  }

  /** A Redis that stopped answering must not hold the shutdown: the TTL removes the keys anyway. */
  private async bounded(write: Promise<unknown>): Promise<void> {
    const settled = write.catch(() => {
      // Redis is down: the keys expire on their own within the TTL.
    });
    await Promise.race([settled, new Promise((resolve) => setTimeout(resolve, this.intervalMs).unref())]);
  }

  private beat(): Promise<void> {
    // One beat at a time: a slow Redis must not pile up writes.
    this.beating ??= this.write().finally(() => {
      this.beating = undefined;
    });
    return this.beating;
  }

  private async write(): Promise<void> {
    if (this.released || !this.link.ready) return;
    const record = this.record();
    await this.link
      .run((redis) => {
        const multi = redis.multi().set(aliveKey(this.id), '1', { PX: this.ttlMs });
        if (this.closed) return multi.exec();
        return multi
          .set(nodeKey(this.id), JSON.stringify(record), { PX: this.ttlMs })
          .zAdd(MEMBERS_KEY, { score: record.heartbeat_at, value: this.id })
          .exec();
      })
      .catch(() => {
        // Skipped: Redis is down (logged once by the link's watcher) and the next beat after it is back registers.
      });
  }
}

/** Every member whose key has not expired; ids left in the set by dead nodes are removed on the way. */
export async function liveNodes(redis: RedisConnection, ttlMs: number): Promise<NodeRecord[]> {
  const ids = await redis.zRange(MEMBERS_KEY, 0, -1);
  if (ids.length === 0) return [];
  const values = await redis.mGet(ids.map(nodeKey));
  const now = Date.now();
  const live: NodeRecord[] = [];
  const dead: string[] = [];
  ids.forEach((id, index) => {
    const value = values[index];
    const record = typeof value === 'string' ? parseRecord(value) : undefined;
    // The key's own TTL is the truth; the age check covers a clock-skewed or hand-written key.
    if (record && now - record.heartbeat_at <= ttlMs * 2) live.push(record);
    else dead.push(id);
  });
  if (dead.length > 0) await redis.zRem(MEMBERS_KEY, dead);
  return live.sort((a, b) => a.started_at - b.started_at || a.id.localeCompare(b.id));
}

function parseRecord(text: string): NodeRecord | undefined {
  try {
    const value = JSON.parse(text) as NodeRecord;
    return typeof value.id === 'string' && typeof value.heartbeat_at === 'number' ? value : undefined;
  } catch {
    return undefined;
  }
}
