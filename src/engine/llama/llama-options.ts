import { type LlamaContextSequence, type LlamaGrammar, LlamaGrammarEvaluationState, type LlamaModel, type SequenceEvaluateOptions, TokenBias, type Token } from 'node-llama-cpp';
import type { EngineJob } from '../engine.ts';

/**
 * Maps our sampling parameters onto node-llama-cpp's evaluate options. `history` is the slot's token
 * history (prompt + generated so far), read lazily because the penalties look at the latest tokens.
 */
export function llamaEvaluateOptions(
  model: LlamaModel,
  job: EngineJob,
  grammar: LlamaGrammar | undefined,
  history: () => readonly number[],
  bannedTokens: readonly number[],
): SequenceEvaluateOptions {
  const s = job.sampling;
  const options: SequenceEvaluateOptions = {
    temperature: Math.max(0, s.temperature),
    topK: s.topK > 0 ? s.topK : 0,
    topP: s.topP > 0 && s.topP < 1 ? s.topP : undefined,
    minP: s.minP > 0 ? s.minP : undefined,
    seed: job.seed,
    yieldEogToken: job.yieldEog,
  };
  const range = Math.max(1, s.repeatPenaltyRange);
  if (s.repeatPenalty !== 1 || s.presencePenalty !== 0 || s.frequencyPenalty !== 0) {
    options.repeatPenalty = {
      punishTokens: () => history().slice(-range) as Token[],
      maxPunishTokens: range,
      penalty: s.repeatPenalty,
      presencePenalty: s.presencePenalty || undefined,
      frequencyPenalty: s.frequencyPenalty || undefined,
    };
  }
  if (s.dry && s.dry.multiplier > 0) {
    options.dryRepeatPenalty = {
      strength: s.dry.multiplier,
      base: s.dry.base,
      allowedLength: s.dry.allowedLength,
      lastTokens: s.dry.penaltyLastN,
      sequenceBreakers: s.dry.sequenceBreakers,
    };
  }
  if (s.xtc && s.xtc.probability > 0) options.xtc = { probability: s.xtc.probability, threshold: s.xtc.threshold };
  if (s.logitBias.size > 0 || bannedTokens.length > 0 || job.banEos) {
    const logits = new Map<number, number>(s.logitBias);
    for (const token of bannedTokens) logits.set(token, Number.NEGATIVE_INFINITY);
    if (job.banEos) {
      for (const token of [model.tokens.eos, model.tokens.eot]) if (token != null) logits.set(token, Number.NEGATIVE_INFINITY);
    }
    options.tokenBias = logitBias(model, logits);
  }
  if (grammar) options.grammarEvaluationState = new LlamaGrammarEvaluationState({ model, grammar });
  return options;
}

/** Ends a slot's cached tokens where the new prompt stops matching, keeping the shared prefix. */
export async function reuseSequencePrefix(sequence: LlamaContextSequence, prompt: readonly number[]): Promise<number> {
  const cached = sequence.contextTokens;
  let common = 0;
  const limit = Math.min(cached.length, prompt.length);
  while (common < limit && cached[common] === prompt[common]) common++;
  // The last prompt token must be evaluated again: its logits are what the first new token is sampled from.
  if (common === prompt.length) common = Math.max(0, common - 1);
  if (sequence.nextTokenIndex > common) {
    await sequence.eraseContextTokenRanges([{ start: common, end: sequence.nextTokenIndex }]);
  }
  return common;
}

/**
 * A TokenBias holding raw logit biases. `TokenBias.set` silently skips end-of-generation tokens, but
 * KoboldCpp's `ban_eos_token` and a client's `logit_bias` on EOS must reach the sampler, so the biases
 * are written to the map node-llama-cpp hands to llama.cpp (`_biases`: token → logit).
 */
function logitBias(model: LlamaModel, logits: ReadonlyMap<number, number>): TokenBias {
  const bias = new TokenBias(model.tokenizer);
  const biases = (bias as unknown as { _biases?: Map<Token, number> })._biases;
  if (!(biases instanceof Map)) throw new Error('node-llama-cpp TokenBias changed shape: update llama-options.ts');
  for (const [token, logit] of logits) biases.set(token as Token, logit);
  return bias;
}
