import { type LlamaHyperParams, llamaTensorShapes } from '../../src/gguf/llama-gguf.ts';
import { seededNormal } from '../../src/gguf/seeded-random.ts';
import { allocateFloats } from './float-arena.ts';

/** Views of one layer's tensors, each row-major [out][in] exactly as ggml stores it (shape [in, out]). */
export interface LayerTensors {
  attnNorm: Float32Array;
  wq: Float32Array;
  wk: Float32Array;
  wv: Float32Array;
  wo: Float32Array;
  ffnNorm: Float32Array;
  wGate: Float32Array;
  wUp: Float32Array;
  wDown: Float32Array;
}

export interface ModelTensors {
  embedding: Float32Array;
  layers: LayerTensors[];
  outputNorm: Float32Array;
  output: Float32Array;
}

/**
 * All weights of a llama model in one flat Float32Array, laid out in GGUF tensor order. One buffer
 * makes gradient clipping, AdamW and checkpoints single loops over memory; the named views make the
 * forward pass read like the architecture. The same class holds gradients and Adam moments.
 */
export class LlamaParameters {
  readonly data: Float32Array;
  readonly tensors: ModelTensors;
  readonly offsets = new Map<string, { offset: number; size: number; shape: number[] }>();

  constructor(
    readonly hparams: LlamaHyperParams,
    readonly vocabSize: number,
    data?: Float32Array,
  ) {
    if (hparams.headCountKv !== hparams.headCount)
      throw new Error('the trainer supports headCountKv === headCount only');
    let total = 0;
    for (const { name, shape } of llamaTensorShapes(hparams, vocabSize)) {
      const size = shape.reduce((a, b) => a * b, 1);
      this.offsets.set(name, { offset: total, size, shape });
      total += size;
    }
    if (data && data.length !== total) throw new Error(`expected ${total} parameters, got ${data.length}`);
    // In the WebAssembly arena so the SIMD kernels can read weights and write gradients in place.
    this.data = allocateFloats(total);
    if (data) this.data.set(data);
    const view = (name: string) => {
      const entry = this.offsets.get(name);
      if (!entry) throw new Error(`no tensor ${name}`);
      return this.data.subarray(entry.offset, entry.offset + entry.size);
    };
    this.tensors = {
      embedding: view('token_embd.weight'),
      layers: Array.from({ length: hparams.blockCount }, (_, i) => ({
        attnNorm: view(`blk.${i}.attn_norm.weight`),
        wq: view(`blk.${i}.attn_q.weight`),
        wk: view(`blk.${i}.attn_k.weight`),
        wv: view(`blk.${i}.attn_v.weight`),
        wo: view(`blk.${i}.attn_output.weight`),
        ffnNorm: view(`blk.${i}.ffn_norm.weight`),
        wGate: view(`blk.${i}.ffn_gate.weight`),
        wUp: view(`blk.${i}.ffn_up.weight`),
        wDown: view(`blk.${i}.ffn_down.weight`),
      })),
      outputNorm: view('output_norm.weight'),
      output: view('output.weight'),
    };
  }

  get count(): number {
    return this.data.length;
  }

  /** Same layout, zero-filled: for gradients and optimizer moments. */
  zerosLike(): LlamaParameters {
    return new LlamaParameters(this.hparams, this.vocabSize);
  }

  /** True for tensors that get weight decay (matrices), false for norm gains. */
  isMatrix(name: string): boolean {
    return (this.offsets.get(name)?.shape.length ?? 0) > 1;
  }

  /**
   * GPT-2 style init: N(0, 0.02) matrices, residual output projections shrunk by sqrt(2·layers) so
   * the residual stream does not grow with depth, norm gains at 1.
   */
  static initialize(hparams: LlamaHyperParams, vocabSize: number, seed: number): LlamaParameters {
    const p = new LlamaParameters(hparams, vocabSize);
    const normal = seededNormal(seed);
    const residualStd = 0.02 / Math.sqrt(2 * hparams.blockCount);
    for (const [name, { offset, size, shape }] of p.offsets) {
      const t = p.data.subarray(offset, offset + size);
      if (shape.length === 1) t.fill(1);
      else {
        const std = /attn_output|ffn_down/.test(name) ? residualStd : 0.02;
        for (let i = 0; i < size; i++) t[i] = normal() * std;
      }
    }
    return p;
  }
}
