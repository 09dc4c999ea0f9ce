import { KindlingError } from '../core/kindling-error.ts';

/** A burst of this many unknown-key lookups is free… */
export const LOOKUP_BURST = 20;
/** …then this many a second. Guessing `KCPP` + 4 digits (10,000 keys) then takes about an hour. */
export const LOOKUPS_PER_SECOND = 3;
/** Principals tracked at most; full buckets are dropped first (they hold no information). */
const MAX_BUCKETS = 10_000;

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Token buckets, one per principal, spent by lookups of keys that name nothing the principal can reach
 * (check, abort, last_logprobs, resume). Known keys cost nothing, so a client polling its own generation is
 * never limited; a client guessing keys gets 429 with Retry-After past the burst.
 */
export class LookupRateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly burst = LOOKUP_BURST,
    private readonly perSecond = LOOKUPS_PER_SECOND,
    private readonly now: () => number = Date.now,
  ) {}

  /** Spends one token for a miss; throws `rate_limited` (429) when the principal has none left. */
  miss(principal: string): void {
    const now = this.now();
    const bucket = this.buckets.get(principal) ?? { tokens: this.burst, at: now };
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond);
    bucket.at = now;
    if (bucket.tokens < 1) {
      this.buckets.set(principal, bucket);
      const retryAfterSeconds = Math.max(1, Math.ceil((1 - bucket.tokens) / this.perSecond));
      throw new KindlingError(
        'rate_limited',
        `Too many lookups of unknown generation keys from this client; try again in ${retryAfterSeconds} s.`,
        { retryAfterSeconds },
      );
    }
    bucket.tokens -= 1;
    this.buckets.set(principal, bucket);
    if (this.buckets.size > MAX_BUCKETS) this.prune(now);
  }

  private prune(now: number): void {
    for (const [principal, bucket] of this.buckets) {
      if (bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond >= this.burst) this.buckets.delete(principal);
    }
    // Still full of active guessers: forget the oldest entries rather than grow without bound.
    for (const principal of this.buckets.keys()) {
      if (this.buckets.size <= MAX_BUCKETS) break;
      this.buckets.delete(principal);
    }
  }
}

const limiters = new WeakMap<object, LookupRateLimiter>();

/** The limiter of one server (keyed by its scheduler, so every route of that server shares it). */
export function lookupLimiter(owner: object): LookupRateLimiter {
  let limiter = limiters.get(owner);
  if (!limiter) {
    limiter = new LookupRateLimiter();
    limiters.set(owner, limiter);
  }
  return limiter;
}
