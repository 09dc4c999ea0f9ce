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
    const bias = new TokenBias(model.tokenizer);
    for (const [token, value] of s.logitBias) bias.set(token as Token, Number.isFinite(value) ? value : 'never');
    for (const token of bannedTokens) bias.set(token as Token, 'never');
    if (job.banEos) {
      for (const token of [model.tokens.eos, model.tokens.eot]) if (token != null) bias.set(token, 'never');
    }
    options.tokenBias = bias;
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
