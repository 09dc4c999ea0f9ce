import type { LlamaParameters } from './llama-parameters.ts';

export interface AdamWSettings {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const DEFAULT_ADAMW: AdamWSettings = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };

/**
 * AdamW (decoupled weight decay) over the flat parameter buffer. Norm gains are not decayed: shrinking
 * them toward 0 would only fight the normalisation they exist to scale.
 */
export class AdamW {
  readonly m: Float32Array;
  readonly v: Float32Array;
  private readonly decayRanges: Array<[number, number]> = [];

  constructor(
    params: LlamaParameters,
    readonly settings: AdamWSettings = DEFAULT_ADAMW,
    state?: { m: Float32Array; v: Float32Array },
  ) {
    this.m = state?.m ?? new Float32Array(params.count);
    this.v = state?.v ?? new Float32Array(params.count);
    for (const [name, { offset, size }] of params.offsets)
      if (params.isMatrix(name)) this.decayRanges.push([offset, offset + size]);
  }

  /** One update; `step` counts from 1 (bias correction). */
  update(params: Float32Array, grads: Float32Array, lr: number, step: number): void {
    const { beta1, beta2, eps, weightDecay } = this.settings;
    const c1 = 1 / (1 - beta1 ** step);
    const c2 = 1 / (1 - beta2 ** step);
    const m = this.m;
    const v = this.v;
    for (let i = 0; i < params.length; i++) {
      const g = grads[i] as number;
      const mi = beta1 * (m[i] as number) + (1 - beta1) * g;
      const vi = beta2 * (v[i] as number) + (1 - beta2) * g * g;
      m[i] = mi;
      v[i] = vi;
      params[i] = (params[i] as number) - (lr * (mi * c1)) / (Math.sqrt(vi * c2) + eps);
    }
    const decay = 1 - lr * weightDecay;
    for (const [start, end] of this.decayRanges)
      for (let i = start; i < end; i++) params[i] = (params[i] as number) * decay;
  }
}

/** Scales gradients so their global L2 norm is at most maxNorm; returns the norm before clipping. */
export function clipGradientNorm(grads: Float32Array, maxNorm: number): number {
  let ss = 0;
  for (let i = 0; i < grads.length; i++) ss += (grads[i] as number) ** 2;
  const norm = Math.sqrt(ss);
  if (norm > maxNorm) {
    const k = maxNorm / norm;
    for (let i = 0; i < grads.length; i++) grads[i] = (grads[i] as number) * k;
  }
  return norm;
}
