/** The quotas' window: what was spent in the last minute counts, to the millisecond. */
export const WINDOW_MS = 60_000;

/**
 * A rolling one-minute window of spent units (requests or tokens), kept as a log of spends so that "how long
 * until N units are free" has an exact answer (a token bucket could only estimate it). Units can also be
 * reserved: they count as spent from the reservation until `settle` turns them into what was really used,
 * which then stays in the window for a minute.
 */
export class MinuteWindow {
  private readonly spends: Array<{ at: number; amount: number }> = [];
  private spent = 0;
  private reserved = 0;

  constructor(
    /** Changed in place by a reload: what was spent stays spent. */
    public limit: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Units left now: the limit less what the last minute spent and what is reserved (never below 0). */
  get remaining(): number {
    this.expire();
    return Math.max(0, this.limit - this.spent - this.reserved);
  }

  spend(amount: number): void {
    if (amount <= 0) return;
    this.expire();
    this.spends.push({ at: this.now(), amount });
    this.spent += amount;
  }

  reserve(amount: number): void {
    this.reserved += amount;
  }

  /** Ends a reservation of `reserved` units, `used` of them spent now. */
  settle(reserved: number, used: number): void {
    this.reserved = Math.max(0, this.reserved - reserved);
    this.spend(used);
  }

  /**
   * Milliseconds until `need` units are free, counting only what expires (reservations end when their
   * generations do, which no one knows ahead): `undefined` when expiring spends alone cannot free them.
   */
  msUntilFree(need: number): number | undefined {
    this.expire();
    let short = this.spent + this.reserved + need - this.limit;
    if (short <= 0) return 0;
    const now = this.now();
    for (const { at, amount } of this.spends) {
      short -= amount;
      if (short <= 0) return at + WINDOW_MS - now;
    }
    return undefined;
  }

  /** Milliseconds until the window is back to its full limit (OpenAI's `x-ratelimit-reset-*`): when the newest spend expires. */
  msUntilReset(): number {
    this.expire();
    const newest = this.spends.at(-1);
    return newest ? newest.at + WINDOW_MS - this.now() : 0;
  }

  /** True when nothing is spent or reserved: the window can be forgotten. */
  get idle(): boolean {
    this.expire();
    return this.spent === 0 && this.reserved === 0;
  }

  private expire(): void {
    const cutoff = this.now() - WINDOW_MS;
    while (this.spends.length > 0 && (this.spends[0] as { at: number }).at <= cutoff) {
      this.spent -= (this.spends.shift() as { amount: number }).amount;
    }
  }
}
