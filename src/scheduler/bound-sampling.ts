import { clampLogprobs, clampSampling } from '../core/clamp-sampling.ts';
import type { GenerationRequest } from '../core/generation-request.ts';
import { KindlingError } from '../core/kindling-error.ts';
import type { SamplingModelLimits } from '../core/sampling-limits.ts';

/**
 * The one place above the engine that knows the model: token ids outside the vocabulary are a 400 naming the id
 * and the range (they would wrap or be ignored in llama.cpp), and every window is clamped to the context and
 * top-k to the vocabulary. Every path (HTTP, WebSocket, every protocol) submits through `Scheduler.submit`.
 */
export function boundRequest(request: GenerationRequest, model: SamplingModelLimits): GenerationRequest {
  const vocabulary = model.vocabularySize;
  const outside = (field: string, id: number) =>
    KindlingError.badInput(field, `token id ${id} is outside the vocabulary (0..${vocabulary - 1})`);
  for (const id of request.sampling.logitBias.keys()) if (id < 0 || id >= vocabulary) throw outside('logit_bias', id);
  for (const id of request.sampling.bannedTokenIds ?? [])
    if (id < 0 || id >= vocabulary) throw outside('custom_token_bans', id);
  return {
    ...request,
    sampling: clampSampling(request.sampling, model),
    logprobs: clampLogprobs(request.logprobs, vocabulary),
  };
}
