import type { LlamaModel } from 'node-llama-cpp';
import { SAMPLING_LIMITS } from '../../core/sampling-limits.ts';
import type { EngineJob, TokenProbability } from '../engine.ts';
import type { NativeContext, NativeSampler, NativeSamplerConfig, NativeStepResult } from './native-context.ts';

export interface SampledToken {
  token: number;
  /** Flat [token, probability, …] over the candidates the chain kept, when asked for. */
  probabilities?: ArrayLike<number>;
}

/**
 * One job's llama.cpp sampler chain. It is configured once and then keeps its own state: it records each token
 * it samples (repetition penalties, DRY, grammar), so nothing is rebuilt or re-sent per token. Only a
 * position with bans of its own (a phrase ban's rewind) changes the token biases for that one sample.
 */
export class SlotSampler {
  private native: NativeSampler;
  private readonly base: NativeSamplerConfig;
  private readonly bias: ReadonlyMap<number, number>;
  private readonly range: number;
  /** Whether the chain now holds a position's own bans instead of the job's biases. */
  private positionBiasApplied = false;
  /** The position `prepare` readied the chain for, until its sample is taken. */
  private preparedFor?: number | undefined;

  constructor(
    /** A fresh chain (LlamaEngine keeps one made ahead per slot: making one costs 0.2 ms per 32k tokens of vocabulary). */
    private readonly newSampler: () => NativeSampler,
    model: LlamaModel,
    private readonly job: EngineJob,
    bannedTokens: readonly number[],
    grammarState: unknown,
    /** The slot's prompt and generated tokens; index i is the token at position i. */
    private readonly history: readonly number[],
    private readonly positionBans?: ReadonlyMap<number, ReadonlySet<number>>,
  ) {
    const s = job.sampling;
    this.range = Math.max(1, s.repeatPenaltyRange);
    const bias = new Map<number, number>(s.logitBias);
    for (const token of [...bannedTokens, ...(s.bannedTokenIds ?? [])]) bias.set(token, Number.NEGATIVE_INFINITY);
    if (job.banEos) {
      for (const token of [model.tokens.eos, model.tokens.eot])
        if (token != null) bias.set(token, Number.NEGATIVE_INFINITY);
    }
    this.bias = bias;
    this.base = {
      temperature: Math.max(0, s.temperature),
      seed: Math.max(0, Math.floor(job.seed)) >>> 0,
      ...(s.topK > 0 ? { topK: s.topK } : {}),
      ...(s.topP > 0 && s.topP < 1 ? { topP: s.topP } : {}),
      ...(s.minP > 0 ? { minP: s.minP } : {}),
      ...(s.xtc && s.xtc.probability > 0
        ? {
            xtcProbability: Math.min(1, Math.max(0, s.xtc.probability)),
            xtcThreshold: Math.min(1, Math.max(0, s.xtc.threshold)),
          }
        : {}),
      ...(s.dry && s.dry.multiplier > 0
        ? {
            dryRepeatPenaltyStrength: s.dry.multiplier,
            dryRepeatPenaltyBase: s.dry.base,
            dryRepeatPenaltyAllowedLength: Math.max(1, s.dry.allowedLength),
            dryRepeatPenaltyLastTokens: Math.max(0, s.dry.penaltyLastN),
            dryRepeatPenaltySequenceBreakers: s.dry.sequenceBreakers,
          }
        : {}),
      ...(grammarState !== undefined ? { grammarEvaluationState: grammarState } : {}),
    };
    this.native = newSampler();
    this.configure(this.bias);
  }

  /** A fresh chain that has seen only the history as it is now (after tokens were taken back). */
  restart(): void {
    this.native.dispose();
    this.native = this.newSampler();
    this.positionBiasApplied = false;
    this.preparedFor = undefined;
    this.configure(this.bias);
  }

  /**
   * Readies the chain for the token that follows `tokens` decoded from `first` on (its position's own bans)
   * and returns it, for a native step that samples within the decode. The history may not hold the last of
   * those tokens yet: a decode queued from a sample runs before the generation took that token.
   */
  prepare(first: number, tokens: readonly number[]): NativeSampler {
    const position = first + tokens.length;
    const missing = position - this.history.length;
    const pending = missing > 0 && missing <= tokens.length ? tokens.slice(tokens.length - missing) : [];
    this.prepareAt(position, pending);
    return this.native;
  }

  private prepareAt(position: number, pending: readonly number[]): void {
    const here = this.positionBans?.get(position);
    if (here && here.size > 0) {
      const merged = new Map(this.bias);
      for (const token of here) merged.set(token, Number.NEGATIVE_INFINITY);
      this.configure(merged, pending);
      this.positionBiasApplied = true;
    } else if (this.positionBiasApplied) {
      this.configure(this.bias, pending);
      this.positionBiasApplied = false;
    }
    this.preparedFor = position;
  }

  /** The sample a native step took for the prepared position (an error message throws, as the sample would). */
  fromStep(result: NativeStepResult): SampledToken {
    this.preparedFor = undefined;
    if (typeof result === 'string') throw new Error(result);
    if (typeof result === 'number') return { token: result };
    return { token: result[0], probabilities: result[1] };
  }

  /** Samples the token at `position` (the history's length) from the batch's logits at `logitIndex`. */
  async sample(context: NativeContext, logitIndex: number, position: number, probabilities: boolean) {
    if (this.preparedFor !== position) this.prepareAt(position, []);
    this.preparedFor = undefined;
    if (!probabilities) return { token: await context.sampleToken(logitIndex, this.native) } as SampledToken;
    const [token, candidates] = await context.sampleToken(logitIndex, this.native, true, false);
    return { token, probabilities: candidates } as SampledToken;
  }

  dispose(): void {
    this.native.dispose();
  }

  private configure(bias: ReadonlyMap<number, number>, pending: readonly number[] = []): void {
    const s = this.job.sampling;
    const config: NativeSamplerConfig = { ...this.base };
    if (s.repeatPenalty !== 1 || s.presencePenalty !== 0 || s.frequencyPenalty !== 0) {
      // The chain compares these with the tokens it has seen and only rebuilds its penalties on a difference.
      config.repeatPenalty = s.repeatPenalty;
      config.repeatPenaltyMaxTokens = this.range;
      const seen = pending.length > 0 ? [...this.history, ...pending] : this.history;
      config.repeatPenaltyTokens = Uint32Array.from(seen.slice(-this.range));
      config.repeatPenaltyPresencePenalty = s.presencePenalty;
      config.repeatPenaltyFrequencyPenalty = s.frequencyPenalty;
    }
    if (bias.size > 0) {
      config.tokenBiasKeys = Uint32Array.from(bias.keys());
      config.tokenBiasValues = Float32Array.from(bias.values());
    }
    this.native.applyConfig(config);
  }
}

/** The sampled token's log-probability and the `n` most likely candidates, from a flat [token, p, …] list. */
export function topProbabilities(
  token: number,
  candidates: ArrayLike<number> | undefined,
  n: number,
): { logprob: number; top: TokenProbability[] } {
  if (!candidates) return { logprob: 0, top: [] };
  // Each candidate may re-sort the list: bounded so a huge `n` cannot make this quadratic in the vocabulary.
  const wanted = Math.min(n, SAMPLING_LIMITS.logprobs);
  const top: TokenProbability[] = [];
  let chosen: number | undefined;
  for (let i = 0; i + 1 < candidates.length; i += 2) {
    const id = candidates[i] as number;
    const logprob = Math.log(candidates[i + 1] as number);
    if (id === token) chosen = logprob;
    if (top.length < wanted) top.push({ tokenId: id, logprob });
    else if (logprob > (top[top.length - 1] as TokenProbability).logprob)
      top[top.length - 1] = { tokenId: id, logprob };
    else continue;
    top.sort((a, b) => b.logprob - a.logprob);
  }
  return { logprob: chosen ?? Number.NEGATIVE_INFINITY, top };
}
