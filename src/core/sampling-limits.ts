/**
 * Hard limits on what one request may ask of the sampler, shared by every protocol's schema and decoder
 * (a request past one is a 400 naming the field) and by the engine (its last line of defence). Windows that
 * depend on the model (context, vocabulary) are clamped by `clampSampling`; these do not depend on it.
 * docs/kobold-compatibility.md ("Limits") lists each with its reason.
 */
export const SAMPLING_LIMITS = {
  /** Stop strings per request: KoboldCpp uses at most 256. */
  stopStrings: 256,
  /** Characters per stop string: longer ones are held back that long before any text streams. */
  stopStringLength: 500,
  /** `logit_bias` entries, and ids in `custom_token_bans`: KoboldCpp's 512. */
  logitBias: 512,
  /** `banned_tokens` / `banned_strings` entries: KoboldCpp's 768. */
  bannedStrings: 768,
  /** Characters per banned string: a phrase ban holds back output as long as its longest phrase. */
  bannedStringLength: 500,
  /** DRY sequence breakers: KoboldCpp's 128. */
  drySequenceBreakers: 128,
  /** Characters kept of each DRY sequence breaker: KoboldCpp and llama.cpp both truncate to 40. */
  drySequenceBreakerLength: 40,
  /** Alternatives per token in logprobs: OpenAI's `top_logprobs` maximum. */
  logprobs: 20,
  /** Token ids in one `detokenize`, token-id prompt or Ollama `context`: more than the largest contexts. */
  tokenIds: 262_144,
} as const;

/** The model's sizes the model-dependent windows are clamped to. */
export interface SamplingModelLimits {
  contextSize: number;
  vocabularySize: number;
}
