import type { Llama, LlamaContext, LlamaGrammarEvaluationState, LlamaModel } from 'node-llama-cpp';

/**
 * node-llama-cpp's addon objects behind its public classes, which the engine drives itself for decoding and
 * sampling (batch-loop.ts says why). This is the only file that reaches behind node-llama-cpp's API; the names
 * are those of node-llama-cpp 3.21 (package.json pins the version), and `nativeParts` fails loudly at load
 * when they are not there, instead of decoding wrong.
 */

/** The batch API of llama.cpp as node-llama-cpp's addon exposes it (AddonContext in its AddonTypes.d.ts). */
export interface NativeBatch {
  initBatch(size: number): void;
  /** Returns the batch's logit index for each of `logitIndexes` (indexes into `tokens`). */
  addToBatch(sequenceId: number, firstPosition: number, tokens: Uint32Array, logitIndexes: Uint32Array): Uint32Array;
  decodeBatch(): Promise<void>;
}

/**
 * One slot's sample from a native step (batch-step.cc): the token (-1 when the chain left none), the token with
 * its candidates as flat [token, probability, …] pairs when asked for, or the error message of the sample.
 */
export type NativeStepResult = number | string | [token: number, probabilities: Float64Array];

/** Samples the slots of a batch within its decode: one native job a batch instead of one more per slot. */
export interface NativeStep {
  /**
   * Called just before `decodeBatch`: the samplers (AddonSampler objects) with their batch logit indexes. The
   * last token, its position and sequence identify the batch, so that another context's decode is left alone.
   */
  plan(
    samplers: readonly NativeSampler[],
    logitIndexes: Int32Array,
    probabilities: Uint8Array,
    batchTokens: number,
    lastToken: number,
    lastPosition: number,
    lastSequence: number,
  ): number;
  /**
   * After the decode, with what `plan` returned: one result per planned sampler, or undefined when the plan did
   * not run. Plans of engines decoding side by side stay apart.
   */
  take(plan: number): NativeStepResult[] | undefined;
}

/** A sequence's KV cells (llama_memory_seq_*). */
export interface NativeKvCache {
  /** False where the model's cache cannot drop part of a sequence (recurrent models). */
  removeTokenCellsFromSequence(sequenceId: number, start: number, end: number): boolean;
  shiftSequenceTokenCells(sequenceId: number, start: number, end: number, delta: number): void;
  getSequenceKvCacheMinPosition(sequenceId: number): number;
  disposeSequence(sequenceId: number): void;
}

export interface NativeSamplerConfig {
  temperature?: number;
  minP?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  xtcProbability?: number;
  xtcThreshold?: number;
  repeatPenalty?: number;
  repeatPenaltyMaxTokens?: number;
  repeatPenaltyTokens?: Uint32Array;
  repeatPenaltyPresencePenalty?: number;
  repeatPenaltyFrequencyPenalty?: number;
  dryRepeatPenaltyStrength?: number;
  dryRepeatPenaltyBase?: number;
  dryRepeatPenaltyAllowedLength?: number;
  dryRepeatPenaltyLastTokens?: number;
  dryRepeatPenaltySequenceBreakers?: string[];
  tokenBiasKeys?: Uint32Array;
  tokenBiasValues?: Float32Array;
  grammarEvaluationState?: unknown;
}

/** A llama.cpp sampler chain; it remembers the tokens it sampled (penalties, grammar) until disposed. */
export interface NativeSampler {
  /** Changes only the parts whose settings differ; every field left out turns its sampler off. */
  applyConfig(config: NativeSamplerConfig): void;
  dispose(): void;
}

export interface NativeContext extends NativeBatch, NativeKvCache {
  sampleToken(logitIndex: number, sampler: NativeSampler): Promise<number>;
  /** With probabilities: the candidates left after the chain, as a flat [token, probability, …] list. */
  sampleToken(
    logitIndex: number,
    sampler: NativeSampler,
    probabilities: true,
    confidence: false,
  ): Promise<[token: number, probabilities: number[] | undefined, confidence: undefined]>;
}

export interface NativeParts {
  context: NativeContext;
  newSampler(): NativeSampler;
  grammarState(state: LlamaGrammarEvaluationState): unknown;
}

const CONTEXT_METHODS = [
  'initBatch',
  'addToBatch',
  'decodeBatch',
  'sampleToken',
  'removeTokenCellsFromSequence',
  'shiftSequenceTokenCells',
  'getSequenceKvCacheMinPosition',
  'disposeSequence',
] as const;

export function nativeParts(llama: Llama, model: LlamaModel, context: LlamaContext): NativeParts {
  const changed = (what: string) =>
    new Error(`node-llama-cpp changed shape (${what}): update src/engine/llama/native-context.ts`);
  const native = (context as unknown as { _ctx?: Record<string, unknown> })._ctx;
  for (const method of CONTEXT_METHODS)
    if (typeof native?.[method] !== 'function') throw changed(`LlamaContext._ctx.${method}`);
  const Sampler = (llama as unknown as { _bindings?: { AddonSampler?: new (model: unknown) => NativeSampler } })
    ._bindings?.AddonSampler;
  const addonModel = (model as unknown as { _model?: unknown })._model;
  if (typeof Sampler !== 'function' || addonModel === undefined) throw changed('Llama._bindings.AddonSampler');
  return {
    context: native as unknown as NativeContext,
    newSampler: () => new Sampler(addonModel),
    grammarState(state) {
      const addonState = (state as unknown as { _state?: unknown })._state;
      if (addonState === undefined) throw changed('LlamaGrammarEvaluationState._state');
      return addonState;
    },
  };
}
