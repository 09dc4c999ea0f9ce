import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { getLlama, type Llama, type LlamaContext, LlamaLogLevel, type LlamaModel } from 'node-llama-cpp';
import { enableBatchStep } from '../src/engine/llama/batch-step.ts';
import { enablePersistentThreadpool } from '../src/engine/llama/persistent-threadpool.ts';
import { BENCH_LLAMA, writeRandomLlamaModel } from '../src/gguf/random-llama-model.ts';

export const BENCH_TMP = join(import.meta.dirname, '.tmp');

/**
 * The benchmark model of the scheduler issue: llama shape, n_embd 768, 12 layers, 12 heads, n_ff 2048,
 * vocab 32000, Q8_0 (134M parameters, ~143 MB), random weights written by our GGUF tools.
 */
export function benchModelPath(): string {
  mkdirSync(BENCH_TMP, { recursive: true });
  const path = join(BENCH_TMP, 'bench-134m-q8_0.gguf');
  if (!existsSync(path)) {
    const started = Date.now();
    writeRandomLlamaModel(path, { type: 'Q8_0', vocabSize: 32000, hparams: BENCH_LLAMA, seed: 42, weightStd: 0.02 });
    console.error(`wrote ${path} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  return path;
}

/**
 * The sampling every benchmark uses on every side (KoboldCpp's usual defaults), so the sides compare like for
 * like: node-llama-cpp's option names, and the same values in the Kobold and llama-server request fields.
 */
export const BENCH_SAMPLING = { temperature: 0.7, topK: 100, topP: 0.92 } as const;
export const KOBOLD_SAMPLING = {
  temperature: BENCH_SAMPLING.temperature,
  top_k: BENCH_SAMPLING.topK,
  top_p: BENCH_SAMPLING.topP,
} as const;

/** A story prompt of about `tokens` tokens for the given tokenizer. */
export function benchPrompt(tokenize: (text: string) => number[], tokens: number): string {
  const sentence = 'Once upon a time there was a little fox and the dog said yes to the happy cat. ';
  let text = '';
  while (tokenize(text).length < tokens) text += sentence;
  while (tokenize(text).length > tokens) text = text.slice(0, -1);
  return text;
}

/**
 * node-llama-cpp for a bench's direct side, with the thread pool our engine gives its contexts (the same library,
 * loaded before `getLlama` as it must be), so "direct" is the same engine as the server's. Prints whether the pool
 * is in use: `KINDLING_THREADPOOL=off` turns it off here and in the servers the bench starts, for the plain
 * node-llama-cpp figures.
 */
export async function benchLlama(threads: number): Promise<Llama> {
  // The native step's library must load first (its llama_decode hands on to the pool's), so that an engine this
  // process loads later can still use it; the direct side never plans a step, so its decodes pass straight on.
  enableBatchStep();
  const pool = enablePersistentThreadpool();
  console.log(pool.loaded ? 'persistent thread pool on every side' : `no persistent thread pool (${pool.reason})`);
  return getLlama({ gpu: false, maxThreads: threads, logLevel: LlamaLogLevel.error });
}

/** The single-stream benchmarks' direct side: what `singleSlotServerArgs` gives the server (one sequence, 2,048 tokens). */
export function singleSequenceContext(model: LlamaModel, threads: number): Promise<LlamaContext> {
  return model.createContext({
    contextSize: 2048,
    sequences: 1,
    threads: { ideal: threads, min: threads },
    batchSize: 512,
  });
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
