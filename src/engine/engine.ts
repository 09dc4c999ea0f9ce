import type { ChatMessage, ChatPrompt } from '../core/chat-message.ts';
import type { GenerationRequest } from '../core/generation-request.ts';
import type { ModelInfo } from '../core/model-info.ts';
import type { SamplingParams } from '../core/sampling-params.ts';
import type { TokenCuts } from './token-cuts.ts';

/** One generation as the engine sees it: tokens in, tokens out. Text, stop strings and wire formats live above. */
export interface EngineJob {
  promptTokens: readonly number[];
  /**
   * The prompt as text, where it could not be tokenized here (an upstream server without a tokenizer route):
   * `promptTokens` is then empty and the engine sends the text as it is.
   */
  promptText?: string;
  sampling: SamplingParams;
  /** The seed actually used (the scheduler picks one when the request has none). */
  seed: number;
  banEos: boolean;
  /** Yield end-of-generation tokens instead of ending on them (the caller decides whether to stop). */
  yieldEog: boolean;
  /** Top alternatives to report per token (0: none, and no probability work at all). */
  logprobs: number;
  /** The consumer stops after this many tokens, so none is decoded ahead past it (nor past the context). */
  maxTokens: number;
  /** The consumer may send `EngineRewind`s, so token bans can differ per position. */
  rewindable?: boolean;
}

export interface TokenProbability {
  tokenId: number;
  logprob: number;
}

export type EngineEvent =
  /** The prompt is in the KV cache: `reused` tokens came from the slot's cache, `evaluated` were computed. */
  | { type: 'prompt-evaluated'; evaluated: number; reused: number }
  | {
      type: 'token';
      token: number;
      eog: boolean;
      logprob?: number;
      top?: TokenProbability[];
      /**
       * The token's text, where the engine has it already (an upstream server streams text): the caller uses it
       * instead of detokenizing, and `tokens` are its ids when the upstream reported them (else empty).
       */
      text?: string;
      tokens?: readonly number[];
    }
  /** What the engine's backend counted for this generation (an upstream's `usage`), before the stream ends. */
  | { type: 'usage'; promptTokens: number; completionTokens: number; cachedPromptTokens?: number };

/**
 * Sent back into `run()`'s iterator (`next(rewind)`) to take back the newest `rewind` tokens and sample
 * that position again with `ban` forbidden there (KoboldCpp's phrase bans).
 */
export interface EngineRewind {
  rewind: number;
  ban: number;
}

export interface EngineCounters {
  /** Prompt tokens actually evaluated (not served from a slot's cache) since start. */
  promptTokensEvaluated: number;
  promptTokensReused: number;
  tokensGenerated: number;
  /** Decode calls (batches) since start: with N slots generating together, about one per N tokens. */
  decodeBatches: number;
  /** Sequences summed over those batches: divided by `decodeBatches`, how many slots shared a batch. */
  batchedSequences: number;
}

export function zeroCounters(): EngineCounters {
  return { promptTokensEvaluated: 0, promptTokensReused: 0, tokensGenerated: 0, decodeBatches: 0, batchedSequences: 0 };
}

/**
 * The inference engine: a model plus `slotCount` independent sequences (slots) that it decodes in shared
 * batches. The scheduler owns which job runs in which slot; the engine never queues.
 */
export interface Engine {
  readonly model: ModelInfo;
  readonly slotCount: number;
  readonly counters: EngineCounters;
  /** llama.cpp contexts decoding on a persistent thread pool (see llama/persistent-threadpool.ts). */
  threadPools?(): number;
  readonly bosToken: number | undefined;
  readonly eosToken: number | undefined;
  /**
   * Synchronous: a long text goes through token-cuts.ts (`tokenizeSliced`, `tokenizeTail`) instead. An engine
   * with a `remoteTokenizer` answers here only what it learned at start-up (`not_implemented` otherwise).
   */
  tokenize(text: string, options: { special: boolean; addBos: boolean }): number[];
  /** Where a text can be split and each side tokenized alone with the same tokens (token-cuts.ts). */
  readonly tokenCuts?: TokenCuts | undefined;
  /** `context`: the tokens just before `tokens`, so leading spaces and partial characters come out right. */
  detokenize(tokens: readonly number[], options: { special: boolean; context?: readonly number[] }): string;
  isEog(token: number): boolean;
  /**
   * Present when tokens live on another server (`--upstream`): tokenizing and detokenizing take a request
   * there. Callers that can wait use it instead of `tokenize`/`detokenize`.
   */
  readonly remoteTokenizer?: RemoteTokenizer | undefined;
  /** Refuses, with the client's 4xx, a request this engine cannot honour (checked before it is queued). */
  checkRequest?(request: GenerationRequest): void;
  /** Tokens currently in a slot's KV cache: what a new job's prompt can reuse. */
  cachedTokens(slot: number): readonly number[];
  /**
   * Runs a job in a slot. Yields `prompt-evaluated` once, then tokens until the consumer stops iterating
   * (returning from the iterator ends the generation at once and frees the slot) or the signal aborts.
   * Passing an `EngineRewind` to `next()` takes tokens back (not supported together with a grammar).
   */
  run(slot: number, job: EngineJob, signal: AbortSignal): AsyncGenerator<EngineEvent, void, EngineRewind | undefined>;
  /** GBNF for a JSON schema (llama.cpp's converter); an unsupported schema is the client's 400. */
  jsonSchemaToGrammar(schema: unknown): Promise<string>;
  /**
   * The chat rendered with the model's own template (from the GGUF); undefined when the model has none, and
   * the protocols then use their documented fallback (protocols/common/fallback-chat-template.ts).
   */
  formatChat?(messages: readonly ChatMessage[]): ChatPrompt | undefined;
  /** Embedding vector for a text, when the model supports it. */
  embed?(text: string): Promise<number[]>;
  dispose(): Promise<void>;
}

/**
 * A tokenizer reached over the network (an upstream server's own routes). Where the upstream has none, `tokenize`
 * and `detokenize` throw `not_implemented` (501) naming the upstream; generation still works from text.
 */
export interface RemoteTokenizer {
  /** False where the upstream offers no tokenizer route: prompts then go to it as text. */
  readonly available: boolean;
  tokenize(text: string, options: { special: boolean; addBos: boolean }, signal?: AbortSignal): Promise<number[]>;
  detokenize(tokens: readonly number[], options: { special: boolean }, signal?: AbortSignal): Promise<string>;
}
