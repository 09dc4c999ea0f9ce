import { KindlingError } from '../../core/kindling-error.ts';
import type { GenerationQuota } from '../../scheduler/generation.ts';
import { MinuteWindow, WINDOW_MS } from './minute-window.ts';

/** Retry-After when the key's own running generations hold the tokens it lacks: they end, but no one knows when. */
const RESERVED_RETRY_SECONDS = 5;

export interface QuotaLimits {
  requestsPerMinute: number;
  tokensPerMinute: number;
}

/**
 * One principal's per-minute quotas (an API key's, or an address's under `--ratelimit`): a window of new
 * generations and one of tokens (prompt plus generated, counted when a generation ends and reserved while it
 * runs). Each submission gets its own `GenerationQuota` from `forRequest`, so its reservation is settled once.
 */
export class PrincipalQuota {
  private requests: MinuteWindow | undefined;
  private tokens: MinuteWindow | undefined;

  constructor(
    /** How errors name whose quota is spent: `key "alice"` or `this address`. */
    private readonly who: string,
    limits: QuotaLimits,
    private readonly now: () => number = Date.now,
  ) {
    this.setLimits(limits);
  }

  /** A reload changed the key's limits: what it spent this minute still counts against the new ones. */
  setLimits(limits: QuotaLimits): void {
    this.requests = resized(this.requests, limits.requestsPerMinute, this.now);
    this.tokens = resized(this.tokens, limits.tokensPerMinute, this.now);
  }

  get limited(): boolean {
    return this.requests !== undefined || this.tokens !== undefined;
  }

  get idle(): boolean {
    return (this.requests?.idle ?? true) && (this.tokens?.idle ?? true);
  }

  forRequest(): GenerationQuota {
    let reserved: number | undefined;
    return {
      check: () => this.check(),
      admit: (promptTokens, maxTokens) => {
        const tokens = this.tokens;
        const need = promptTokens + Math.min(1, maxTokens);
        // Too large for any minute: said first, since waiting for the window would not help.
        if (tokens && need > tokens.limit) throw this.tokensSpent(tokens, need);
        this.check();
        let budget = maxTokens;
        if (tokens) {
          if (tokens.remaining < need) throw this.tokensSpent(tokens, need);
          budget = Math.min(maxTokens, tokens.remaining - promptTokens);
          tokens.reserve(promptTokens + budget);
        }
        this.requests?.spend(1);
        reserved = promptTokens + budget;
        return budget;
      },
      settle: (used) => {
        if (reserved === undefined) return;
        this.tokens?.settle(reserved, used);
        reserved = undefined;
      },
    };
  }

  /** OpenAI's `x-ratelimit-*` headers for the limits this principal has. */
  headers(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [unit, window] of [
      ['requests', this.requests],
      ['tokens', this.tokens],
    ] as const) {
      if (!window) continue;
      out[`x-ratelimit-limit-${unit}`] = String(window.limit);
      out[`x-ratelimit-remaining-${unit}`] = String(window.remaining);
      out[`x-ratelimit-reset-${unit}`] = goDuration(window.msUntilReset());
    }
    return out;
  }

  private check(): void {
    const requests = this.requests;
    if (requests && requests.remaining < 1) {
      const seconds = retrySeconds(requests.msUntilFree(1));
      throw new KindlingError(
        'rate_limited',
        `Rate limit reached for ${this.who}: ${requests.limit} requests per minute. Try again in ${seconds} s.`,
        { retryAfterSeconds: seconds },
      );
    }
    if (this.tokens && this.tokens.remaining < 1) throw this.tokensSpent(this.tokens, 1);
  }

  private tokensSpent(tokens: MinuteWindow, need: number): KindlingError {
    if (need > tokens.limit) {
      return new KindlingError(
        'rate_limited',
        `Request too large for ${this.who}: its prompt needs ${need} tokens, more than its ${tokens.limit} tokens per minute. Shorten the prompt.`,
        { retryAfterSeconds: WINDOW_MS / 1000 },
      );
    }
    const ms = tokens.msUntilFree(need);
    const seconds = ms === undefined ? RESERVED_RETRY_SECONDS : retrySeconds(ms);
    return new KindlingError(
      'rate_limited',
      `Rate limit reached for ${this.who}: ${tokens.limit} tokens per minute (prompt and generated tokens, ${tokens.remaining} left). Try again in ${seconds} s.`,
      { retryAfterSeconds: seconds },
    );
  }
}

function resized(window: MinuteWindow | undefined, limit: number, now: () => number): MinuteWindow | undefined {
  if (!Number.isFinite(limit)) return undefined;
  if (window) {
    window.limit = limit;
    return window;
  }
  return new MinuteWindow(limit, now);
}

/** Whole seconds, at least 1: a Retry-After of 0 invites a client to retry at once into the same 429. */
function retrySeconds(ms: number | undefined): number {
  return Math.max(1, Math.ceil((ms ?? WINDOW_MS) / 1000));
}

/** A duration the way OpenAI's rate-limit headers write it (Go's format): `20ms`, `17.5s`, `1m0s`. */
export function goDuration(ms: number): string {
  const rounded = Math.max(0, Math.round(ms));
  if (rounded < 1000) return `${rounded}ms`;
  const minutes = Math.floor(rounded / 60_000);
  const seconds = Number(((rounded % 60_000) / 1000).toFixed(3));
  return minutes > 0 ? `${minutes}m${seconds}s` : `${seconds}s`;
}
