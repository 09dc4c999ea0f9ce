import type { StopReason } from './stop-reason.ts';

/** The last finished generation and the totals since start: all measured, none invented. */
export interface GenerationStats {
  readonly totalGenerations: number;
  readonly lastPromptTokens: number;
  readonly lastEvaluatedPromptTokens: number;
  readonly lastGeneratedTokens: number;
  readonly lastPromptMs: number;
  readonly lastGenerationMs: number;
  readonly lastSeed: number;
  readonly lastStopReason: StopReason | undefined;
  readonly lastFinishedAt: number;
  readonly uptimeSeconds: number;
}

/** The engine's counters since start (prompt tokens, generated tokens, batches). */
export interface DecodeCounters {
  readonly promptTokensEvaluated: number;
  readonly promptTokensReused: number;
  readonly tokensGenerated: number;
  readonly decodeBatches: number;
  readonly batchedSequences: number;
}

/** What the server is doing now, for the protocols' status bodies (Kobold's `/api/extra/perf`). */
export interface ServerActivity {
  readonly stats: GenerationStats;
  readonly counters: DecodeCounters;
  readonly queueLength: number;
  readonly busySlots: number;
  readonly slotCount: number;
  readonly threadPools: number;
}
