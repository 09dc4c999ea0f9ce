import type { RetryOptions } from './client-types.ts';

export interface RetryPolicy {
  maxRetries: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/** `retry-after` longer than this is not waited for: the error is thrown instead (a minute is a UI eternity). */
export const MAX_RETRY_AFTER_MS = 60_000;

export function resolveRetryPolicy(options: RetryOptions | undefined): RetryPolicy {
  return {
    maxRetries: options?.maxRetries ?? 4,
    baseDelayMs: options?.baseDelayMs ?? 500,
    maxDelayMs: options?.maxDelayMs ?? 8000,
  };
}

/**
 * Delay before retry number `failures` (1-based): capped exponential backoff with up to 25 % jitter taken
 * off, so clients that failed together do not come back together. A server hint (`retry-after`, SSE
 * `retry:`) replaces the computed delay: the server knows its own load better than our formula.
 */
export function backoffDelay(
  failures: number,
  policy: RetryPolicy,
  serverHintMs?: number,
  random: () => number = Math.random,
): number {
  if (serverHintMs !== undefined && serverHintMs >= 0) return Math.min(serverHintMs, MAX_RETRY_AFTER_MS);
  const exponential = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, failures - 1));
  return Math.round(exponential * (1 - 0.25 * random()));
}

/** Reads `retry-after-ms` (milliseconds, OpenAI) or `retry-after` (seconds or an HTTP date). */
export function parseRetryAfter(headers: Headers, now: number = Date.now()): number | undefined {
  const ms = headers.get('retry-after-ms');
  if (ms !== null) {
    const value = Number.parseFloat(ms);
    if (Number.isFinite(value) && value >= 0) return value;
  }
  const raw = headers.get('retry-after');
  if (raw === null) return undefined;
  const seconds = Number(raw.trim());
  if (raw.trim() !== '' && Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(raw);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** A timer that rejects with the signal's reason when the signal aborts, so no retry waits past an abort. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
