import { allocateFloats } from './float-arena.ts';
import { linearBackwardInput, linearBackwardWeight, linearForward } from './linear.ts';

/**
 * Multi-head causal self-attention over one sequence, written as per-head matrix products so it runs on
 * the same SIMD dense kernels as the linear layers (about 5× faster than scalar loops over (t, s) pairs,
 * even though the products also fill the masked upper triangle). q, k, v, out are [T][heads·headDim];
 * each head is gathered into a contiguous [Tp][headDim] block, Tp = T rounded up to 4 with zero rows.
 * Probabilities are [heads][Tp][Tp], kept by the caller for the backward pass.
 */
export class CausalAttention {
  private readonly qh: Float32Array;
  private readonly kh: Float32Array;
  private readonly vh: Float32Array;
  private readonly oh: Float32Array;
  private readonly dqh: Float32Array;
  private readonly dkh: Float32Array;
  private readonly dvh: Float32Array;
  private readonly dScores: Float32Array;
  private readonly scale: number;

  constructor(
    readonly maxTokens: number,
    readonly heads: number,
    readonly headDim: number,
  ) {
    const tp = CausalAttention.padded(maxTokens);
    const block = () => allocateFloats(tp * headDim);
    this.qh = block();
    this.kh = block();
    this.vh = block();
    this.oh = block();
    this.dqh = block();
    this.dkh = block();
    this.dvh = block();
    this.dScores = allocateFloats(tp * tp);
    this.scale = 1 / Math.sqrt(headDim);
  }

  static padded(T: number): number {
    return Math.ceil(T / 4) * 4;
  }

  /** Size of the probabilities buffer the caller keeps per layer. */
  static probsLength(maxTokens: number, heads: number): number {
    const tp = CausalAttention.padded(maxTokens);
    return heads * tp * tp;
  }

  forward(out: Float32Array, probs: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, T: number): void {
    const { headDim: hd, heads } = this;
    const tp = CausalAttention.padded(T);
    for (let h = 0; h < heads; h++) {
      this.gather(this.qh, q, h, T);
      this.gather(this.kh, k, h, T);
      this.gather(this.vh, v, h, T);
      const p = probs.subarray(h * tp * tp, (h + 1) * tp * tp);
      linearForward(p, this.qh, this.kh, tp, hd, tp);
      for (let t = 0; t < tp; t++) {
        const row = t * tp;
        if (t >= T) {
          p.fill(0, row, row + tp);
          continue;
        }
        let max = Number.NEGATIVE_INFINITY;
        for (let s = 0; s <= t; s++) if ((p[row + s] as number) > max) max = p[row + s] as number;
        let sum = 0;
        for (let s = 0; s <= t; s++) {
          const e = Math.exp(((p[row + s] as number) - max) * this.scale);
          p[row + s] = e;
          sum += e;
        }
        const inv = 1 / sum;
        for (let s = 0; s <= t; s++) p[row + s] = (p[row + s] as number) * inv;
        p.fill(0, row + t + 1, row + tp);
      }
      this.oh.fill(0, 0, tp * hd);
      linearBackwardInput(this.oh, p, this.vh, tp, hd, tp);
      this.scatter(out, this.oh, h, T);
    }
  }

  /** Overwrites dq, dk, dv with the gradients of q, k, v (as passed to forward) from dOut. */
  backward(
    dq: Float32Array,
    dk: Float32Array,
    dv: Float32Array,
    dOut: Float32Array,
    probs: Float32Array,
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    T: number,
  ): void {
    const { headDim: hd, heads } = this;
    const tp = CausalAttention.padded(T);
    const dS = this.dScores;
    for (let h = 0; h < heads; h++) {
      this.gather(this.qh, q, h, T);
      this.gather(this.kh, k, h, T);
      this.gather(this.vh, v, h, T);
      this.gather(this.oh, dOut, h, T); // oh holds dOut's head here
      const p = probs.subarray(h * tp * tp, (h + 1) * tp * tp);
      linearForward(dS, this.oh, this.vh, tp, hd, tp); // dP = dOut·Vᵀ
      this.dvh.fill(0, 0, tp * hd);
      linearBackwardWeight(this.dvh, p, this.oh, tp, hd, tp); // dV = Pᵀ·dOut
      // softmax backward: dS = P·(dP − Σ P·dP), times the score scale; zero above the diagonal.
      for (let t = 0; t < tp; t++) {
        const row = t * tp;
        let weighted = 0;
        for (let s = 0; s <= t && t < T; s++) weighted += (p[row + s] as number) * (dS[row + s] as number);
        for (let s = 0; s < tp; s++)
          dS[row + s] =
            s <= t && t < T ? (p[row + s] as number) * ((dS[row + s] as number) - weighted) * this.scale : 0;
      }
      this.dqh.fill(0, 0, tp * hd);
      linearBackwardInput(this.dqh, dS, this.kh, tp, hd, tp); // dQ = dS·K
      this.dkh.fill(0, 0, tp * hd);
      linearBackwardWeight(this.dkh, dS, this.qh, tp, hd, tp); // dK = dSᵀ·Q
      this.scatter(dq, this.dqh, h, T);
      this.scatter(dk, this.dkh, h, T);
      this.scatter(dv, this.dvh, h, T);
    }
  }

  /** Head h's columns of src ([T][heads·headDim]) into dst ([Tp][headDim]), zero rows past T. */
  private gather(dst: Float32Array, src: Float32Array, h: number, T: number): void {
    const hd = this.headDim;
    const dim = hd * this.heads;
    for (let t = 0; t < T; t++) dst.set(src.subarray(t * dim + h * hd, t * dim + h * hd + hd), t * hd);
    dst.fill(0, T * hd, CausalAttention.padded(T) * hd);
  }

  private scatter(dst: Float32Array, src: Float32Array, h: number, T: number): void {
    const hd = this.headDim;
    const dim = hd * this.heads;
    for (let t = 0; t < T; t++) dst.set(src.subarray(t * hd, t * hd + hd), t * dim + h * hd);
  }
}
