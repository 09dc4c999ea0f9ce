import { SAMPLING_LIMITS, type SamplingModelLimits } from './sampling-limits.ts';
import type { SamplingParams } from './sampling-params.ts';

/**
 * Every window and list of the sampler clamped to what the model allows, as KoboldCpp clamps them: a window past
 * the context is the context, top-k past the vocabulary is the vocabulary. Never throws: the scheduler has already
 * answered nonsense with a 400 (see scheduler/bound-sampling.ts); the engine calls this again as its last line of
 * defence, because llama.cpp allocates each window up front (a 10⁹-token DRY window is 8 GB).
 */
export function clampSampling(s: SamplingParams, model: SamplingModelLimits): SamplingParams {
  const context = Math.max(1, Math.floor(model.contextSize));
  const vocabulary = Math.max(0, Math.floor(model.vocabularySize));
  const window = (n: number) => (Number.isNaN(n) ? context : Math.min(context, Math.max(1, Math.round(n))));
  const inVocabulary = (id: number) => Number.isInteger(id) && id >= 0 && id < vocabulary;
  const topK = Number.isFinite(s.topK) && s.topK > 0 ? Math.min(vocabulary, Math.round(s.topK)) : 0;
  const out: SamplingParams = {
    ...s,
    topK,
    repeatPenaltyRange: window(s.repeatPenaltyRange),
    logitBias: new Map(
      [...s.logitBias]
        .filter(([id, bias]) => inVocabulary(id) && !Number.isNaN(bias))
        .slice(0, SAMPLING_LIMITS.logitBias),
    ),
    bannedStrings: s.bannedStrings.slice(0, SAMPLING_LIMITS.bannedStrings),
  };
  if (s.bannedTokenIds) out.bannedTokenIds = s.bannedTokenIds.filter(inVocabulary).slice(0, SAMPLING_LIMITS.logitBias);
  if (s.dry) {
    out.dry = {
      ...s.dry,
      allowedLength: window(s.dry.allowedLength),
      penaltyLastN: window(s.dry.penaltyLastN),
      sequenceBreakers: s.dry.sequenceBreakers
        .slice(0, SAMPLING_LIMITS.drySequenceBreakers)
        .map((breaker) => Array.from(breaker).slice(0, SAMPLING_LIMITS.drySequenceBreakerLength).join('')),
    };
  }
  return out;
}

/** Alternatives per token, at most `SAMPLING_LIMITS.logprobs` and the vocabulary. */
export function clampLogprobs(n: number, vocabularySize: number): number {
  if (!Number.isFinite(n) || n <= 0) return 0;
  return Math.min(Math.round(n), SAMPLING_LIMITS.logprobs, Math.max(1, vocabularySize));
}
