import { fileURLToPath } from 'node:url';

/**
 * The demo model shipped in the repository (models/demo.gguf): what `kindling serve` runs when no
 * --model is given, so a fresh clone serves real text with no download and no training.
 */
export const DEMO_MODEL_PATH = fileURLToPath(new URL('../../models/demo.gguf', import.meta.url));
