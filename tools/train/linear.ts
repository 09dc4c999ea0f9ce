import { sharedFloatArena } from './float-arena.ts';

/**
 * Dense layers y = x·Wᵀ over row-major arrays (x: [rows][inDim], W: [outDim][inDim], as ggml stores it).
 * When every operand lives in the shared WebAssembly arena and the sizes are multiples of 4, the SIMD
 * kernels run; otherwise plain JS, which works on four rows at a time so every loaded element feeds four
 * multiply-adds.
 */

const arena = sharedFloatArena();
const inArena = (a: Float32Array, b: Float32Array, c: Float32Array) =>
  arena?.holds(a) === true && arena.holds(b) && arena.holds(c);

/** y[t][o] = Σ_i x[t][i]·W[o][i] */
export function linearForward(
  y: Float32Array,
  x: Float32Array,
  w: Float32Array,
  rows: number,
  inDim: number,
  outDim: number,
): void {
  if (inDim % 4 === 0 && outDim % 4 === 0 && rows > 0 && inArena(y, x, w)) {
    arena?.kernels.forward(y.byteOffset, x.byteOffset, w.byteOffset, rows, inDim, outDim);
    return;
  }
  for (let t = 0; t < rows; t++) {
    const xo = t * inDim;
    const yo = t * outDim;
    let o = 0;
    for (; o + 3 < outDim; o += 4) {
      const w0 = o * inDim;
      const w1 = w0 + inDim;
      const w2 = w1 + inDim;
      const w3 = w2 + inDim;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let i = 0; i < inDim; i++) {
        const xi = x[xo + i] as number;
        s0 += xi * (w[w0 + i] as number);
        s1 += xi * (w[w1 + i] as number);
        s2 += xi * (w[w2 + i] as number);
        s3 += xi * (w[w3 + i] as number);
      }
      y[yo + o] = s0;
      y[yo + o + 1] = s1;
      y[yo + o + 2] = s2;
      y[yo + o + 3] = s3;
    }
    for (; o < outDim; o++) {
      const wo = o * inDim;
      let s = 0;
      for (let i = 0; i < inDim; i++) s += (x[xo + i] as number) * (w[wo + i] as number);
      y[yo + o] = s;
    }
  }
}

/** dx[t][i] += Σ_o dy[t][o]·W[o][i] */
export function linearBackwardInput(
  dx: Float32Array,
  dy: Float32Array,
  w: Float32Array,
  rows: number,
  inDim: number,
  outDim: number,
): void {
  if (inDim % 4 === 0 && outDim % 4 === 0 && rows > 0 && inArena(dx, dy, w)) {
    arena?.kernels.backward_input(dx.byteOffset, dy.byteOffset, w.byteOffset, rows, inDim, outDim);
    return;
  }
  for (let t = 0; t < rows; t++) {
    const xo = t * inDim;
    const yo = t * outDim;
    let o = 0;
    for (; o + 3 < outDim; o += 4) {
      const c0 = dy[yo + o] as number;
      const c1 = dy[yo + o + 1] as number;
      const c2 = dy[yo + o + 2] as number;
      const c3 = dy[yo + o + 3] as number;
      const w0 = o * inDim;
      const w1 = w0 + inDim;
      const w2 = w1 + inDim;
      const w3 = w2 + inDim;
      for (let i = 0; i < inDim; i++) {
        dx[xo + i] =
          (dx[xo + i] as number) +
          c0 * (w[w0 + i] as number) +
          c1 * (w[w1 + i] as number) +
          c2 * (w[w2 + i] as number) +
          c3 * (w[w3 + i] as number);
      }
    }
    for (; o < outDim; o++) {
      const c = dy[yo + o] as number;
      const wo = o * inDim;
      for (let i = 0; i < inDim; i++) dx[xo + i] = (dx[xo + i] as number) + c * (w[wo + i] as number);
    }
  }
}

/** dW[o][i] += Σ_t dy[t][o]·x[t][i] */
export function linearBackwardWeight(
  dw: Float32Array,
  dy: Float32Array,
  x: Float32Array,
  rows: number,
  inDim: number,
  outDim: number,
): void {
  if (inDim % 4 === 0 && rows % 4 === 0 && rows > 0 && outDim > 0 && inArena(dw, dy, x)) {
    arena?.kernels.backward_weight(dw.byteOffset, dy.byteOffset, x.byteOffset, rows, inDim, outDim);
    return;
  }
  for (let o = 0; o < outDim; o++) {
    const wo = o * inDim;
    let t = 0;
    for (; t + 3 < rows; t += 4) {
      const c0 = dy[t * outDim + o] as number;
      const c1 = dy[(t + 1) * outDim + o] as number;
      const c2 = dy[(t + 2) * outDim + o] as number;
      const c3 = dy[(t + 3) * outDim + o] as number;
      const x0 = t * inDim;
      const x1 = x0 + inDim;
      const x2 = x1 + inDim;
      const x3 = x2 + inDim;
      for (let i = 0; i < inDim; i++) {
        dw[wo + i] =
          (dw[wo + i] as number) +
          c0 * (x[x0 + i] as number) +
          c1 * (x[x1 + i] as number) +
          c2 * (x[x2 + i] as number) +
          c3 * (x[x3 + i] as number);
      }
    }
    for (; t < rows; t++) {
      const c = dy[t * outDim + o] as number;
      const xo = t * inDim;
      for (let i = 0; i < inDim; i++) dw[wo + i] = (dw[wo + i] as number) + c * (x[xo + i] as number);
    }
  }
}
