/** RMSNorm as llama.cpp computes it: y = x / sqrt(mean(x²) + eps) · gain. Saves 1/rms per row for backward. */
export function rmsNormForward(
  y: Float32Array,
  invRms: Float32Array,
  x: Float32Array,
  gain: Float32Array,
  rows: number,
  dim: number,
  eps: number,
): void {
  for (let t = 0; t < rows; t++) {
    const o = t * dim;
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += (x[o + i] as number) ** 2;
    const r = 1 / Math.sqrt(ss / dim + eps);
    invRms[t] = r;
    for (let i = 0; i < dim; i++) y[o + i] = (x[o + i] as number) * r * (gain[i] as number);
  }
}

/**
 * With g = dy·gain: dx = r·g − x·r³·(g·x)/dim, and dgain += dy·x·r. dx is accumulated (+=) because
 * the norm's input is the residual stream, whose gradient already holds the skip connection's share.
 */
export function rmsNormBackward(
  dx: Float32Array,
  dGain: Float32Array,
  dy: Float32Array,
  x: Float32Array,
  invRms: Float32Array,
  gain: Float32Array,
  rows: number,
  dim: number,
): void {
  for (let t = 0; t < rows; t++) {
    const o = t * dim;
    const r = invRms[t] as number;
    let dot = 0;
    for (let i = 0; i < dim; i++) {
      const d = dy[o + i] as number;
      const xi = x[o + i] as number;
      dot += d * (gain[i] as number) * xi;
      dGain[i] = (dGain[i] as number) + d * xi * r;
    }
    const k = (r * r * r * dot) / dim;
    for (let i = 0; i < dim; i++)
      dx[o + i] = (dx[o + i] as number) + r * (dy[o + i] as number) * (gain[i] as number) - k * (x[o + i] as number);
  }
}
