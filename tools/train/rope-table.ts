/**
 * Rotary position embedding in llama.cpp's "normal" mode (the llama architecture's): within each head,
 * adjacent pairs (x[2i], x[2i+1]) rotate by pos·base^(−2i/headDim). GGUF q/k weights are stored for this
 * pairing, so training with it means the exported weights need no permutation.
 */
export class RopeTable {
  private readonly cos: Float32Array;
  private readonly sin: Float32Array;
  private readonly half: number;

  constructor(
    maxPositions: number,
    readonly headDim: number,
    base: number,
  ) {
    this.half = headDim / 2;
    this.cos = new Float32Array(maxPositions * this.half);
    this.sin = new Float32Array(maxPositions * this.half);
    for (let p = 0; p < maxPositions; p++) {
      for (let i = 0; i < this.half; i++) {
        const theta = p * base ** ((-2 * i) / headDim);
        this.cos[p * this.half + i] = Math.cos(theta);
        this.sin[p * this.half + i] = Math.sin(theta);
      }
    }
  }

  /** Rotates every head of `rows` positions in place; `inverse` applies Rᵀ, which is the backward pass. */
  apply(x: Float32Array, rows: number, heads: number, inverse = false): void {
    const hd = this.headDim;
    const sign = inverse ? -1 : 1;
    for (let t = 0; t < rows; t++) {
      const table = t * this.half;
      for (let h = 0; h < heads; h++) {
        const base = (t * heads + h) * hd;
        for (let i = 0; i < this.half; i++) {
          const c = this.cos[table + i] as number;
          const s = sign * (this.sin[table + i] as number);
          const a = x[base + 2 * i] as number;
          const b = x[base + 2 * i + 1] as number;
          x[base + 2 * i] = a * c - b * s;
          x[base + 2 * i + 1] = a * s + b * c;
        }
      }
    }
  }
}
