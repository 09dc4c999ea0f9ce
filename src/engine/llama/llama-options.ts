import {
  type LlamaContextSequence,
  type LlamaGrammar,
  LlamaGrammarEvaluationState,
  type LlamaModel,
  type SequenceEvaluateOptions,
  type Token,
  TokenBias,
} from 'node-llama-cpp';
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
  positionBans?: ReadonlyMap<number, ReadonlySet<number>>,
): SequenceEvaluateOptions {
  const s = job.sampling;
  const options: SequenceEvaluateOptions = {
    temperature: Math.max(0, s.temperature),
    topK: Math.max(s.topK, 0),
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
  if (s.logitBias.size > 0 || bannedTokens.length > 0 || job.banEos || positionBans) {
    const logits = new Map<number, number>(s.logitBias);
    for (const token of bannedTokens) logits.set(token, Number.NEGATIVE_INFINITY);
    if (job.banEos) {
      for (const token of [model.tokens.eos, model.tokens.eot])
        if (token != null) logits.set(token, Number.NEGATIVE_INFINITY);
    }
    const fixed = logitBias(model, logits);
    // Bans tied to one position (phrase-ban rewinds) are merged in when that position is sampled.
    options.tokenBias = positionBans
      ? () => {
          const here = positionBans.get(history().length);
          if (!here || here.size === 0) return fixed;
          const merged = new Map(logits);
          for (const token of here) merged.set(token, Number.NEGATIVE_INFINITY);
          return logitBias(model, merged);
        }
      : fixed;
  }
  if (grammar) options.grammarEvaluationState = new LlamaGrammarEvaluationState({ model, grammar });
  return options;
}

/** Tokens a shifted prompt must share, in a row, with the cache before we trust the alignment. */
const SHIFT_PROBE = 16;

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let n = 0;
  const limit = Math.min(a.length, b.length);
  while (n < limit && a[n] === b[n]) n++;
  return n;
}

/**
 * Where the prompt continues inside the cache after `from`, when the client cut the oldest part of its
 * text (a story that outgrew the context): the cached position at which the prompt's next tokens appear.
 */
function findShift(cached: readonly number[], prompt: readonly number[], from: number): number | undefined {
  if (prompt.length - from < SHIFT_PROBE) return undefined;
  for (let q = from + 1; q + SHIFT_PROBE <= cached.length; q++) {
    let k = 0;
    while (k < SHIFT_PROBE && cached[q + k] === prompt[from + k]) k++;
    if (k === SHIFT_PROBE) return q;
  }
  return undefined;
}

/**
 * Keeps as much of a slot's KV cache as the new prompt can use and returns how many prompt tokens are
 * already in place. First the common prefix; then, if the prompt's next tokens appear further on in the
 * cache (the front of the story was trimmed), the tokens in between are erased and the rest is shifted
 * down (llama.cpp's context shift) instead of re-evaluating everything after the cut.
 */
export async function reuseSequencePrefix(sequence: LlamaContextSequence, prompt: readonly number[]): Promise<number> {
  let common = commonPrefix(sequence.contextTokens, prompt);
  const shiftTo = common < prompt.length ? findShift(sequence.contextTokens, prompt, common) : undefined;
  if (shiftTo !== undefined) {
    await sequence.eraseContextTokenRanges([{ start: common, end: shiftTo }]);
    common = commonPrefix(sequence.contextTokens, prompt);
  }
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
