import type { StopReason } from '../core/stop-reason.ts';
import type { RunFigures } from './generation-runner.ts';

/** Figures `/api/extra/perf` reports: all measured, none invented. */
export class SchedulerStats {
  readonly startedAt = Date.now();
  totalGenerations = 0;
  lastPromptTokens = 0;
  lastEvaluatedPromptTokens = 0;
  lastGeneratedTokens = 0;
  lastPromptMs = 0;
  lastGenerationMs = 0;
  lastSeed = 0;
  lastStopReason: StopReason | undefined;
  lastFinishedAt = Date.now();

  record(figures: RunFigures, seed: number): void {
    this.totalGenerations++;
    this.lastPromptTokens = figures.promptTokens;
    this.lastEvaluatedPromptTokens = figures.evaluatedPromptTokens;
    this.lastGeneratedTokens = figures.generatedTokens;
    this.lastPromptMs = figures.promptMs;
    this.lastGenerationMs = figures.generationMs;
    this.lastSeed = seed;
    this.lastStopReason = figures.reason;
    this.lastFinishedAt = Date.now();
  }

  get uptimeSeconds(): number {
    return (Date.now() - this.startedAt) / 1000;
  }
}
