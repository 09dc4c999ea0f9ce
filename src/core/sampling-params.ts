/**
 * Sampler settings in one protocol-neutral shape. Every protocol maps its own field names onto this
 * (see `protocols/common/sampler-table.ts`); the engine maps it onto llama.cpp.
 */
export interface SamplingParams {
  /** 0 (or below) means greedy. */
  temperature: number;
  /** 0 disables top-k. */
  topK: number;
  /** 1 disables top-p. */
  topP: number;
  /** 0 disables min-p. */
  minP: number;
  /** 1 disables the repetition penalty. */
  repeatPenalty: number;
  /**
   * How many of the most recent tokens the repetition, presence and frequency penalties look at; `Infinity` is the
   * whole context. The scheduler clamps it to the context (`clampSampling`).
   */
  repeatPenaltyRange: number;
  presencePenalty: number;
  frequencyPenalty: number;
  /** Undefined: a random seed per request (reported back as the seed used). */
  seed?: number;
  /** `penaltyLastN`: like `repeatPenaltyRange` (`Infinity`: the whole context). */
  dry?: { multiplier: number; base: number; allowedLength: number; penaltyLastN: number; sequenceBreakers: string[] };
  xtc?: { probability: number; threshold: number };
  /** Token id → additive logit bias; -Infinity bans the token. */
  logitBias: ReadonlyMap<number, number>;
  /** Token ids that may never be generated (Kobold `custom_token_bans`). */
  bannedTokenIds?: readonly number[];
  /** Strings whose tokens may never be generated (case-insensitive, matched against each token's text). */
  bannedStrings: readonly string[];
  /** GBNF grammar the output must follow. */
  grammar?: string;
  /**
   * Samplers that clients send and llama.cpp (through node-llama-cpp) does not offer: accepted, reported
   * in `/api/extra/version` as ignored, never an error.
   */
  ignored: readonly string[];
}

export const DEFAULT_SAMPLING: SamplingParams = {
  temperature: 0.7,
  topK: 100,
  topP: 0.92,
  minP: 0,
  repeatPenalty: 1,
  repeatPenaltyRange: 320,
  presencePenalty: 0,
  frequencyPenalty: 0,
  logitBias: new Map(),
  bannedStrings: [],
  ignored: [],
};
