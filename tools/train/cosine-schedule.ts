export interface CosineSchedule {
  peak: number;
  min: number;
  warmupSteps: number;
  totalSteps: number;
}

/** Linear warm-up to `peak`, then half a cosine down to `min` at `totalSteps`; `step` counts from 1. */
export function learningRateAt(step: number, s: CosineSchedule): number {
  if (step <= s.warmupSteps) return (s.peak * step) / Math.max(1, s.warmupSteps);
  const progress = Math.min(1, (step - s.warmupSteps) / Math.max(1, s.totalSteps - s.warmupSteps));
  return s.min + 0.5 * (s.peak - s.min) * (1 + Math.cos(Math.PI * progress));
}
