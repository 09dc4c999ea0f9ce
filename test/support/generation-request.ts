import type { GenerationRequest } from '../../src/core/generation-request.ts';
import { DEFAULT_SAMPLING } from '../../src/core/sampling-params.ts';

/**
 * A core request as a decoder would produce it, for tests and benches that drive the scheduler or engine
 * directly: no stops, no special-token parsing, default sampling; a keyed request keeps running when its
 * client leaves, as the decoders decide.
 */
export function generationRequest(prompt: string, overrides: Partial<GenerationRequest> = {}): GenerationRequest {
  return {
    prompt,
    memory: '',
    maxTokens: 5,
    parseSpecialTokens: false,
    stopStrings: [],
    trimStop: true,
    banEos: false,
    bypassEos: false,
    renderSpecial: false,
    sampling: DEFAULT_SAMPLING,
    logprobs: 0,
    abortOnDisconnect: overrides.key === undefined,
    ...overrides,
  };
}
