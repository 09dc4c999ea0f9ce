import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeRandomLlamaModel } from '../gguf/random-llama-model.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
/** The demo model trained by our own tools and shipped in the repository. */
export const DEMO_MODEL_PATH = join(ROOT, 'models/demo.gguf');
/**
 * Decoding threads for the demo model (and the placeholder) when `--threads` is not given. A 1.1M-parameter
 * token computes in well under a millisecond, less than handing work to a second thread costs: on 2 cores one
 * thread decoded 1,156 t/s and two 90 t/s (docs/benchmarks.md).
 */
export const DEMO_MODEL_THREADS = 1;
const PLACEHOLDER_PATH = join(ROOT, '.cache/placeholder-random-weights.gguf');

/**
 * The model `kindling serve` uses when given none: the shipped demo model, or, where it is missing, a
 * random-weight placeholder generated on the spot (its text is noise, and the server says so everywhere).
 */
export function defaultModel(): { path: string; placeholder: boolean } {
  if (existsSync(DEMO_MODEL_PATH)) return { path: DEMO_MODEL_PATH, placeholder: false };
  if (!existsSync(PLACEHOLDER_PATH)) {
    mkdirSync(dirname(PLACEHOLDER_PATH), { recursive: true });
    writeRandomLlamaModel(PLACEHOLDER_PATH, { type: 'F16', seed: 7, hparams: { name: 'kindling-placeholder' } });
  }
  return { path: PLACEHOLDER_PATH, placeholder: true };
}
