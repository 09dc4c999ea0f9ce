/** How a principal's requests are scheduled; an API key sets it (docs/operations.md, "API keys and quotas"). */
export interface QueueQos {
  /** `interactive` requests start before `batch` ones (a batch request that waited past the aging limit counts as interactive). */
  priority: 'interactive' | 'batch';
  /** Share of the slots' turns against other principals with queued work: weight 2 gets twice the turns of weight 1. */
  weight: number;
  /** Slots the principal may hold at once; its other requests wait while others run. */
  maxConcurrent: number;
  /** Requests the principal may have waiting; past that, submit is refused with 429. */
  maxQueued: number;
}

/** Anonymous callers and the one-password shortcut: interactive, weight 1, no caps. */
export const DEFAULT_QOS: QueueQos = {
  priority: 'interactive',
  weight: 1,
  maxConcurrent: Number.POSITIVE_INFINITY,
  maxQueued: Number.POSITIVE_INFINITY,
};

/**
 * A batch request that has waited this long is ordered as an interactive one (by its old virtual start, so it
 * goes ahead of interactive work that arrived after it): batch work is delayed by interactive traffic, never
 * starved by it.
 */
export const BATCH_AGING_MS = 30_000;

interface Entry<T> {
  item: T;
  principal: string;
  priority: QueueQos['priority'];
  maxConcurrent: number;
  /** Virtual start tag (start-time fair queueing): the principal's turn number, in units of 1/weight. */
  start: number;
  /** The length of its turn: `1 / weight`. */
  turn: number;
  /** Arrival order, the last tie-break. */
  seq: number;
  enqueuedAt: number;
}

/**
 * The waiting requests, ordered weighted-fair across principals (start-time fair queueing): each request gets a
 * virtual start tag `max(V, the principal's last finish tag)` and a finish tag one turn (`1/weight`) later; `V`
 * is the highest start tag of the requests that started. A principal that queues 50 requests spreads them over 50
 * of its turns, so another principal's single request is tagged with the current turn and starts at the next
 * free slot: it waits at most one slot's turn. An idle principal saves no credit (its tags restart at `V`).
 *
 * The order is (class, start tag, arrival), where class is interactive before batch, with aging. A principal at
 * its `maxConcurrent` is skipped until one of its generations ends.
 */
export class FairQueue<T> {
  private readonly entries: Entry<T>[] = [];
  private readonly lastFinish = new Map<string, number>();
  private readonly runningBy = new Map<string, number>();
  /** The principal of each running item, oldest start first (for `order`'s projection). */
  private readonly startOrder: string[] = [];
  private virtualTime = 0;
  private seq = 0;

  constructor(
    private readonly agingMs = BATCH_AGING_MS,
    private readonly now: () => number = Date.now,
  ) {}

  get length(): number {
    return this.entries.length;
  }

  /** The waiting items, in arrival order. */
  items(): T[] {
    return this.entries.map((entry) => entry.item);
  }

  /** Waiting items by their declared priority (metrics). */
  byPriority(): Record<QueueQos['priority'], number> {
    const counts = { interactive: 0, batch: 0 };
    for (const entry of this.entries) counts[entry.priority]++;
    return counts;
  }

  queuedOf(principal: string): number {
    let n = 0;
    for (const entry of this.entries) if (entry.principal === principal) n++;
    return n;
  }

  runningOf(principal: string): number {
    return this.runningBy.get(principal) ?? 0;
  }

  push(item: T, principal: string, qos: QueueQos = DEFAULT_QOS): void {
    const start = Math.max(this.virtualTime, this.lastFinish.get(principal) ?? 0);
    const turn = 1 / qos.weight;
    this.lastFinish.set(principal, start + turn);
    this.entries.push({
      item,
      principal,
      priority: qos.priority,
      maxConcurrent: qos.maxConcurrent,
      start,
      turn,
      seq: this.seq++,
      enqueuedAt: this.now(),
    });
  }

  /**
   * Takes an item out without running it (aborted while queued). The turn it held goes back to its principal:
   * its later requests move up one turn, so requests that never ran cost it no share.
   */
  remove(item: T): boolean {
    const index = this.entries.findIndex((entry) => entry.item === item);
    if (index < 0) return false;
    const [removed] = this.entries.splice(index, 1) as [Entry<T>];
    for (const entry of this.entries) {
      if (entry.principal === removed.principal && entry.start > removed.start)
        entry.start = Math.max(removed.start, entry.start - removed.turn);
    }
    const finish = this.lastFinish.get(removed.principal);
    if (finish !== undefined) this.lastFinish.set(removed.principal, Math.max(removed.start, finish - removed.turn));
    this.forgetIdle();
    return true;
  }

  /**
   * The next item to start, taken out of the queue and counted as running for its principal (until `release`);
   * undefined when nothing waits or every waiting principal is at its `maxConcurrent`.
   */
  take(): T | undefined {
    const sorted = this.sorted();
    const entry = sorted.find((e) => this.runningOf(e.principal) < e.maxConcurrent);
    if (!entry) return undefined;
    this.entries.splice(this.entries.indexOf(entry), 1);
    this.virtualTime = Math.max(this.virtualTime, entry.start);
    this.runningBy.set(entry.principal, this.runningOf(entry.principal) + 1);
    this.startOrder.push(entry.principal);
    return entry.item;
  }

  /**
   * Counts an item that starts without having waited here (a fleet job, ordered by the fleet's queue) as running
   * for its principal, until `release`.
   */
  hold(principal: string): void {
    this.runningBy.set(principal, this.runningOf(principal) + 1);
    this.startOrder.push(principal);
  }

  /** Counts a principal's item that was running through `take` or `hold` as ended. */
  release(principal: string): void {
    const index = this.startOrder.indexOf(principal);
    if (index >= 0) this.startOrder.splice(index, 1);
    const running = this.runningOf(principal) - 1;
    if (running > 0) this.runningBy.set(principal, running);
    else this.runningBy.delete(principal);
    this.forgetIdle();
  }

  /**
   * The order the waiting items will start in if nothing new arrives, as `take` hands them out, on `slots` slots
   * and with running generations taken to end in the order they started (the one projection that needs no
   * guess of their lengths; exact without caps, where the order does not depend on which slot frees first).
   */
  order(slots = Number.POSITIVE_INFINITY): T[] {
    const sorted = this.sorted();
    // No caps among the waiting: the order is the sort (the projection below costs O(n²)).
    if (sorted.every((e) => e.maxConcurrent === Number.POSITIVE_INFINITY)) return sorted.map((e) => e.item);
    const running = [...this.startOrder];
    const count = (principal: string) => running.filter((p) => p === principal).length;
    const left = sorted;
    const out: T[] = [];
    while (left.length > 0) {
      if (running.length >= slots) running.shift();
      let index = left.findIndex((e) => count(e.principal) < e.maxConcurrent);
      while (index < 0 && running.length > 0) {
        running.shift();
        index = left.findIndex((e) => count(e.principal) < e.maxConcurrent);
      }
      const entry = left.splice(Math.max(0, index), 1)[0] as Entry<T>;
      running.push(entry.principal);
      out.push(entry.item);
    }
    return out;
  }

  /** When the next waiting batch request ages into the interactive class (undefined: none will). */
  nextAgingAt(): number | undefined {
    let next: number | undefined;
    const now = this.now();
    for (const entry of this.entries) {
      const at = entry.enqueuedAt + this.agingMs;
      if (entry.priority === 'batch' && at > now && (next === undefined || at < next)) next = at;
    }
    return next;
  }

  private sorted(): Entry<T>[] {
    const now = this.now();
    const rank = (entry: Entry<T>) =>
      entry.priority === 'interactive' || now - entry.enqueuedAt >= this.agingMs ? 0 : 1;
    return [...this.entries].sort((a, b) => rank(a) - rank(b) || a.start - b.start || a.seq - b.seq);
  }

  /** Principals with nothing waiting or running keep no state: their next request starts at `V` anyway. */
  private forgetIdle(): void {
    if (this.lastFinish.size < 4096) return;
    const active = new Set(this.entries.map((entry) => entry.principal));
    for (const principal of this.lastFinish.keys()) {
      if (
        !active.has(principal) &&
        !this.runningBy.has(principal) &&
        (this.lastFinish.get(principal) ?? 0) <= this.virtualTime
      )
        this.lastFinish.delete(principal);
    }
  }
}
