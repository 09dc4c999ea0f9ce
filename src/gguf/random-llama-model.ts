import type { GgmlTypeName } from './gguf-value-types.ts';
import { writeGgufFile } from './gguf-writer.ts';
import { type LlamaGgufInput, type LlamaHyperParams, llamaGgufDocument } from './llama-gguf.ts';
import { seededNormal } from './seeded-random.ts';
import { testVocabulary } from './vocabulary.ts';

export interface RandomLlamaOptions {
  type?: GgmlTypeName;
  seed?: number;
  hparams?: Partial<LlamaHyperParams>;
  /** Vocabulary size (padded with filler pieces); defaults to the test vocabulary's natural size. */
  vocabSize?: number;
  /** Standard deviation of matrix weights; larger values give peakier (less uniform) next-token distributions. */
  weightStd?: number;
  /** More metadata (a chat template, a pooling type, …) for tests of what models declare. */
  extraMetadata?: LlamaGgufInput['extraMetadata'];
}

/** A tiny model that loads in milliseconds: what the integration tests run on. */
export const TINY_LLAMA: LlamaHyperParams = {
  name: 'kindling-test-tiny',
  contextLength: 2048,
  embeddingLength: 64,
  blockCount: 2,
  feedForwardLength: 128,
  headCount: 4,
  headCountKv: 2,
  rmsEpsilon: 1e-5,
  ropeFreqBase: 10000,
};

/** The benchmark shape the scheduler issue names: 134M parameters with a 32000 vocabulary. */
export const BENCH_LLAMA: LlamaHyperParams = {
  name: 'kindling-bench-134m',
  contextLength: 4096,
  embeddingLength: 768,
  blockCount: 12,
  feedForwardLength: 2048,
  headCount: 12,
  headCountKv: 12,
  rmsEpsilon: 1e-5,
  ropeFreqBase: 10000,
};

/**
 * Writes a llama-architecture GGUF with seeded random weights. Its text is noise, but it exercises the
 * whole llama.cpp path (tokenizer, KV cache, sampling, batching) exactly as a trained model would.
 */
export function writeRandomLlamaModel(path: string, options: RandomLlamaOptions = {}): void {
  const hparams = { ...TINY_LLAMA, ...options.hparams };
  const vocab = testVocabulary(options.vocabSize);
  const seed = options.seed ?? 1234;
  const std = options.weightStd ?? 0.08;
  let tensorIndex = 0;
  const doc = llamaGgufDocument({
    hparams,
    vocab,
    type: options.type ?? 'F16',
    weights: (_name, shape) => {
      const n = shape.reduce((a, b) => a * b, 1);
      const out = new Float32Array(n);
      tensorIndex++;
      if (shape.length === 1) return out.fill(1);
      const normal = seededNormal(seed * 1000 + tensorIndex);
      for (let i = 0; i < n; i++) out[i] = normal() * std;
      return out;
    },
    ...(options.extraMetadata ? { extraMetadata: options.extraMetadata } : {}),
  });
  writeGgufFile(path, doc);
}
