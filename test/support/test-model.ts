import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { GgmlTypeName } from '../../src/gguf/gguf-value-types.ts';
import { type RandomLlamaOptions, writeRandomLlamaModel } from '../../src/gguf/random-llama-model.ts';

export const TEST_TMP = join(import.meta.dirname, '..', '.tmp');

/**
 * A small random-weight llama model written by our own GGUF tools (once per type and seed; test files run
 * in parallel processes, and the writer renames atomically, so a concurrent writer is harmless).
 */
export function testModelPath(type: GgmlTypeName = 'F16', options: RandomLlamaOptions = {}): string {
  mkdirSync(TEST_TMP, { recursive: true });
  const seed = options.seed ?? 1234;
  const path = join(
    TEST_TMP,
    `tiny-${type}-${seed}${options.hparams ? `-${JSON.stringify(options.hparams).replace(/\W+/g, '')}` : ''}.gguf`,
  );
  if (!existsSync(path)) writeRandomLlamaModel(path, { ...options, type, seed });
  return path;
}

/**
 * A larger random model for tests that need a generation to still be running: about 0.4 ms per token on one
 * quiet thread and 2 ms under a full test run, so a test must not count on its pace.
 */
export function slowTestModelPath(): string {
  return testModelPath('F16', { hparams: SLOW_MODEL_HPARAMS });
}

export const SLOW_MODEL_HPARAMS = {
  embeddingLength: 256,
  blockCount: 4,
  feedForwardLength: 1024,
  headCount: 4,
  headCountKv: 4,
} as const;

/**
 * Slower still (about 3 ms per token on one quiet thread, with a 4k training context), for a test that watches a
 * reply grow across several half-second polls: stop it once it has seen enough, rather than count on its pace.
 */
export const LONG_RUN_MODEL_HPARAMS = {
  embeddingLength: 512,
  blockCount: 8,
  feedForwardLength: 2048,
  headCount: 4,
  headCountKv: 4,
  contextLength: 4096,
} as const;
