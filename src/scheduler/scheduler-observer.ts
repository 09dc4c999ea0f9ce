import type { Generation } from './generation.ts';

/**
 * What the scheduler tells whoever watches it (the server's metrics), so that nothing here knows how figures are
 * kept. The calls are made inline, `tokenGap` once per generated token: an implementation must be cheap (no
 * string formatting, no allocation) and must not throw.
 */
export interface SchedulerObserver {
  /** A queued generation took a slot (its queue wait is `startedAt - createdAt`). */
  started(generation: Generation): void;
  /** A generation's first token came out of the engine, `seconds` after it was queued (time to first token). */
  firstToken(generation: Generation, seconds: number): void;
  /** Any later token, `seconds` after the token before it. */
  tokenGap(seconds: number): void;
  /** A generation ended: its final part (`finish` or `error`) is the last of its log. Also for one aborted while queued. */
  finished(generation: Generation): void;
}
