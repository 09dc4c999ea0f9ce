import type { TokenList } from './answer.ts';
import type { ChatMessage, ChatPrompt } from './chat-message.ts';
import type { GenerationView } from './generation-view.ts';
import type { ModelInfo } from './model-info.ts';
import type { ServerActivity } from './server-activity.ts';

export interface TokenizeOptions {
  special: boolean;
  addBos: boolean;
}

/** A generation a key named, for a status or abort route. */
export interface FoundGeneration {
  generation: GenerationView;
  /** 1-based place in the queue, 0 once it runs. */
  queuePosition: number;
  /** Proof someone still wants the result: a keyed generation's resume window starts again. */
  touch(): void;
}

/**
 * The generations a caller can reach by key. A key that names nothing this caller can reach spends a token of
 * its lookup rate limit (a 429 `KindlingError` past the burst), so keys cannot be guessed quickly.
 */
export interface GenerationDirectory {
  /** By the caller's own key or a server id; without a key, the caller's own last key-less generation. */
  lookup(principal: string, key: string | undefined): FoundGeneration | undefined;
  /** Aborts what `lookup` would find, while it runs; true when it did. */
  abort(principal: string, key: string | undefined): boolean;
  /**
   * On a fleet node only: `lookup`, and on a local miss the generations other nodes run (read from the fleet's
   * Redis). Absent on a single node, whose lookups stay synchronous and in-process.
   */
  lookupAnywhere?(principal: string, key: string | undefined): Promise<FoundGeneration | undefined>;
  /** On a fleet node only: `abort`, and on a local miss asks the node that runs it to abort it. */
  abortAnywhere?(principal: string, key: string | undefined): Promise<boolean>;
}

/** A model some live node of the fleet serves. */
export interface FleetModel {
  id: string;
  name: string;
  contextSize: number;
}

/**
 * What the server offers a protocol, built once per server: the model's facts, its tokenizer, the generations
 * by key, the activity figures. Protocols see this and `core/`, never the scheduler or the engine.
 */
export interface ProtocolServices {
  readonly model: ModelInfo;
  /** Kindling's own version. */
  readonly version: string;
  /** `max_length` when a request names none (`--max-length`). */
  readonly defaultMaxLength: number;
  /** True when a password protects the server. */
  readonly passwordProtected: boolean;
  /** True with `--quiet` (log level silent): Kobold's perf reports it. */
  readonly quiet: boolean;
  readonly bosToken: number | undefined;
  readonly generations: GenerationDirectory;
  /**
   * True when the tokenizer is another server's (`--upstream`): `tokenize` then answers only the few texts learned
   * at start-up, and `countTokens` and `detokenize` ask the upstream (a 501 where it has no tokenizer route).
   */
  readonly remoteTokens: boolean;
  /** Synchronous: for short texts only (a long one goes through `countTokens`). */
  tokenize(text: string, options: TokenizeOptions): number[];
  /** Every token of a text of any length, in slices that yield; stops when `signal` aborts. */
  countTokens(text: string, options: TokenizeOptions, signal: AbortSignal): Promise<TokenList>;
  detokenize(tokens: readonly number[], options: { special: boolean }): Promise<string>;
  /** The text of a prompt given as token ids: only the ids that can still fit the context are detokenized. */
  promptTextOfIds(ids: readonly number[]): Promise<string>;
  /** The chat rendered with the model's own template, when it has one. */
  formatChat?(messages: readonly ChatMessage[]): ChatPrompt | undefined;
  /** An embedding vector; a `not_supported` error when the model cannot embed. */
  embed(text: string): Promise<number[]>;
  /** GBNF for a JSON schema (llama.cpp's converter); an unsupported schema is the client's 400. */
  jsonSchemaToGrammar(schema: unknown): Promise<string>;
  activity(): ServerActivity;
  /**
   * A fleet node (`--redis`): the models of every live node, by the id `/v1/models` shows, for the listings;
   * undefined while the fleet's Redis is down (a listing then shows this node's model alone).
   */
  fleetModels?(): Promise<FleetModel[] | undefined>;
  /** When the model file was last changed (the epoch when it cannot be read): Ollama lists it. */
  modelModifiedAt(): Date;
  /** The story file of `--preloadstory`, as stored, or undefined without one. */
  preloadStory(): Promise<string | undefined>;
}
