import { BATCH_AGING_MS } from './fair-queue.ts';

/** How the scheduler queues, times and keeps generations; the server's flags default to these. */
export interface SchedulerOptions {
  /** Requests allowed to wait beyond the busy slots; past that, submit fails with 503. */
  maxQueue: number;
  /** How long a finished generation stays findable by key (check, resume, abort). */
  graceMs: number;
  /** Wall-clock limit of one generation once running (0: none). */
  maxGenerationMs: number;
  /** Longest wait in the queue before the request fails with a timeout (0: none). */
  maxQueueWaitMs: number;
  /** How long a keyed generation whose readers all left keeps running for a resume or a poll (0: abort at once). */
  resumeWindowMs?: number;
  /** A batch request waiting longer than this is ordered as interactive (fair-queue.ts `BATCH_AGING_MS`). */
  batchAgingMs?: number;
}

/**
 * The one definition of these defaults: src/config/server-config.ts takes its `--queue`, `--stream-grace`,
 * `--resume-window`, `--max-generation-time` and `--queue-timeout` defaults from here.
 */
export const DEFAULT_SCHEDULER_OPTIONS: Required<SchedulerOptions> = {
  maxQueue: 16,
  graceMs: 60_000,
  maxGenerationMs: 0,
  maxQueueWaitMs: 0,
  resumeWindowMs: 10_000,
  batchAgingMs: BATCH_AGING_MS,
};
