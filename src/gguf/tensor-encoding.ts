import type { GgmlTypeName } from './gguf-value-types.ts';

/** Q8_0 packs 32 weights per block: one f16 scale and 32 signed bytes. */
export const Q8_0_BLOCK = 32;
const Q8_0_BLOCK_BYTES = 2 + Q8_0_BLOCK;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE 754 half precision, round to nearest even (matches ggml's `ggml_fp32_to_fp16` for finite values). */
export function float32ToFloat16(value: number): number {
  f32[0] = value;
  const x = u32[0] as number;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

export function encodedTensorBytes(type: GgmlTypeName, elements: number): number {
  switch (type) {
    case 'F32':
      return elements * 4;
    case 'F16':
      return elements * 2;
    case 'Q8_0':
      return (elements / Q8_0_BLOCK) * Q8_0_BLOCK_BYTES;
  }
}

/** Encodes float weights into the byte layout ggml expects for `type`. */
export function encodeTensor(type: GgmlTypeName, data: Float32Array): Uint8Array {
  const out = new Uint8Array(encodedTensorBytes(type, data.length));
  const view = new DataView(out.buffer);
  if (type === 'F32') {
    for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i] as number, true);
  } else if (type === 'F16') {
    for (let i = 0; i < data.length; i++) view.setUint16(i * 2, float32ToFloat16(data[i] as number), true);
  } else {
    if (data.length % Q8_0_BLOCK !== 0) throw new Error(`Q8_0 needs a multiple of ${Q8_0_BLOCK} elements`);
    for (let b = 0; b < data.length / Q8_0_BLOCK; b++) {
      let amax = 0;
      for (let j = 0; j < Q8_0_BLOCK; j++) amax = Math.max(amax, Math.abs(data[b * Q8_0_BLOCK + j] as number));
      const d = amax / 127;
      const inv = d ? 1 / d : 0;
      const base = b * Q8_0_BLOCK_BYTES;
      view.setUint16(base, float32ToFloat16(d), true);
      for (let j = 0; j < Q8_0_BLOCK; j++)
        view.setInt8(base + 2 + j, Math.round((data[b * Q8_0_BLOCK + j] as number) * inv));
    }
  }
  return out;
}
