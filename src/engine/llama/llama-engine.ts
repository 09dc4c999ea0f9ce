import {
  getLlama,
  type Llama,
  type LlamaContext,
  LlamaGrammarEvaluationState,
  LlamaLogLevel,
  type LlamaModel,
  type Token,
} from 'node-llama-cpp';
import type { ChatMessage, ChatPrompt } from '../../core/chat-message.ts';
import { clampSampling } from '../../core/clamp-sampling.ts';
import { KindlingError } from '../../core/kindling-error.ts';
import type { Adjustment, ModelInfo } from '../../core/model-info.ts';
import {
  type Engine,
  type EngineCounters,
  type EngineEvent,
  type EngineJob,
  type EngineRewind,
  zeroCounters,
} from '../engine.ts';
import { type TokenCuts, tokenizeTail } from '../token-cuts.ts';
import { BatchLoop } from './batch-loop.ts';
import { type BatchStep, enableBatchStep } from './batch-step.ts';
import { autoSlotCount, planContextSize, planThreads, releaseAfterTurn } from './context-plan.ts';
import { LlamaChatTemplate } from './llama-chat-template.ts';
import { LlamaEmbedder } from './llama-embedder.ts';
import { describeModel } from './model-description.ts';
import { type NativeParts, nativeParts } from './native-context.ts';
import { enablePersistentThreadpool, type PersistentThreadpool } from './persistent-threadpool.ts';
import { grammarDeadEnd, SamplingInputs } from './sampling-inputs.ts';
import { SlotCache } from './slot-cache.ts';
import { type SampledToken, SlotSampler, topProbabilities } from './slot-sampler.ts';
import { SpareSamplers } from './spare-samplers.ts';
import { type TokenizerMetadata, tokenizerCuts } from './tokenizer-cuts.ts';

/** A sampled token, and the decode of it when the batch loop queued that already (see `run`). */
interface Step {
  sampled: SampledToken;
  followed?: Promise<Step | undefined> | undefined;
}

/** Resolves when a step and the decodes queued after it are done (or were cancelled). */
async function settle(pending: Promise<Step | undefined>): Promise<void> {
  const step = await pending.catch(() => undefined);
  if (step?.followed) await settle(step.followed);
}

export interface LlamaEngineOptions {
  modelPath: string;
  /** Per-slot context window. */
  contextSize: number;
  /** Generation slots, or `'auto'`: see `autoSlotCount`. */
  slots: number | 'auto';
  /** CPU threads for decoding: never more than the cores we may use (oversubscription is ~300× slower). */
  threads: number;
  /** `'auto'` offloads what fits to a GPU when one exists; 0 keeps everything on the CPU. */
  gpuLayers: number | 'auto';
  batchSize?: number;
  placeholder?: boolean;
  /**
   * False samples each slot after the decode, as without the native step (batch-step.ts), for comparisons in one
   * process; `KINDLING_NATIVE_STEP=off` turns it off for the whole process.
   */
  nativeStep?: boolean;
}

/**
 * The only module that talks to node-llama-cpp: model, one context, one llama.cpp sequence per slot. Decoding
 * and sampling go through the context's native batch API (batch-loop.ts, native-context.ts).
 */
export class LlamaEngine implements Engine {
  private readonly inputs: SamplingInputs;
  private chatTemplate?: LlamaChatTemplate | null;
  private embedder?: LlamaEmbedder | undefined;
  private readonly native: NativeParts;
  private readonly slots: SlotCache[];
  private readonly loop: BatchLoop;
  private readonly spareSamplers: SpareSamplers;
  /** Samplers of ended generations whose last decode is still in flight. */
  private readonly settling = new Set<Promise<void>>();
  /** Built at load (a pass over the vocabulary), so no request pays for it. */
  readonly tokenCuts: TokenCuts | undefined;

  private constructor(
    private readonly llama: Llama,
    private readonly llamaModel: LlamaModel,
    private readonly context: LlamaContext,
    slotCount: number,
    readonly model: ModelInfo,
    readonly counters: EngineCounters,
    releaseAfterTurn: boolean,
    private readonly threadpool: PersistentThreadpool,
    step: BatchStep,
  ) {
    this.native = nativeParts(llama, llamaModel, context);
    this.inputs = new SamplingInputs(llama, llamaModel, model.vocabularySize);
    this.slots = Array.from({ length: slotCount }, (_, id) => new SlotCache(id, this.native.context));
    this.loop = new BatchLoop(this.native.context, context.batchSize, {
      releaseAfterTurn,
      counters,
      ...(step.loaded ? { step: step.step } : {}),
    });
    this.spareSamplers = new SpareSamplers(() => this.native.newSampler(), slotCount);
    const metadata = llamaModel.fileInfo.metadata as { tokenizer?: { ggml?: TokenizerMetadata } };
    this.tokenCuts = tokenizerCuts(metadata.tokenizer?.ggml);
  }

  static async load(options: LlamaEngineOptions): Promise<LlamaEngine> {
    // Before node-llama-cpp loads its addon, the step before the pool: the addon's llama_decode binds to the
    // first library loaded, which chains to the next.
    const loadedStep = enableBatchStep();
    const step: BatchStep =
      options.nativeStep === false ? { loaded: false, reason: 'turned off for this engine' } : loadedStep;
    const threadpool = enablePersistentThreadpool();
    const threadPlan = planThreads(options.threads);
    const threads = threadPlan.value;
    const llama = await getLlama({
      gpu: options.gpuLayers === 0 ? false : 'auto',
      maxThreads: threads,
      logLevel: LlamaLogLevel.error,
      progressLogs: false,
    });
    const llamaModel = await llama.loadModel({
      modelPath: options.modelPath,
      gpuLayers: options.gpuLayers === 'auto' ? 'auto' : options.gpuLayers,
    });
    const contextPlan = planContextSize(options.contextSize, llamaModel.trainContextSize);
    const contextSize = contextPlan.value;
    const batchSize = options.batchSize ?? 512;
    const slots = options.slots === 'auto' ? await autoSlotCount(llama, llamaModel, contextSize) : options.slots;
    const counters = zeroCounters();
    // The engine decodes through the context's batch API itself (batch-loop.ts), so node-llama-cpp's sequence
    // objects and batching are never used: sequence ids 0..slots-1 are the slots.
    const context = await llamaModel.createContext({
      contextSize,
      sequences: slots,
      threads: { ideal: threads, min: threads },
      batchSize,
    });
    const embedder = LlamaEmbedder.forModel(llamaModel, { threads, contextSize });
    const info = describeModel(llama, llamaModel, {
      modelPath: options.modelPath,
      contextSize,
      canEmbed: embedder !== undefined,
      threadpool,
      step,
      placeholder: options.placeholder ?? false,
      adjustments: [contextPlan.adjustment, threadPlan.adjustment].filter((a): a is Adjustment => a !== undefined),
    });
    const engine = new LlamaEngine(
      llama,
      llamaModel,
      context,
      slots,
      info,
      counters,
      releaseAfterTurn(llama, llamaModel, threads),
      threadpool,
      step,
    );
    engine.embedder = embedder;
    return engine;
  }

  async embed(text: string): Promise<number[]> {
    const embedder = this.embedder;
    if (!embedder)
      throw new KindlingError('not_supported', `The loaded model '${this.model.name}' does not provide embeddings.`);
    // node-llama-cpp measures the input by tokenizing all of it, on the event loop; a text whose tail alone
    // passes the context is refused after tokenizing only that tail.
    const tail = await tokenizeTail(this, text, false, this.model.contextSize + 1);
    if (!tail.whole && tail.tokens.length > this.model.contextSize) {
      throw KindlingError.badInput(
        'input',
        `the text is more than ${this.model.contextSize} tokens; the embedding context holds ${this.model.contextSize}`,
      );
    }
    // node-llama-cpp serializes decodes across contexts on Vulkan (parallel ones crashed); our generation
    // batches bypass its lock, so the embedding context waits for the batch loop there instead.
    if (this.llama.gpu === 'vulkan') return this.loop.runAlone(() => embedder.embed(text));
    return embedder.embed(text);
  }

  formatChat(messages: readonly ChatMessage[]): ChatPrompt | undefined {
    // Built on first use: parsing a large Jinja template costs start-up time that Kobold-only users never need.
    if (this.chatTemplate === undefined)
      this.chatTemplate = LlamaChatTemplate.fromModel(this.llamaModel, this.model.chatTemplate) ?? null;
    return this.chatTemplate?.format(messages);
  }

  /** Contexts decoding on a persistent thread pool now (0 where persistent-threadpool.ts could not load). */
  threadPools(): number {
    return this.threadpool.loaded ? this.threadpool.attachedPools() : 0;
  }

  get slotCount(): number {
    return this.slots.length;
  }
  get bosToken(): number | undefined {
    return this.llamaModel.tokens.bos ?? undefined;
  }
  get eosToken(): number | undefined {
    return this.llamaModel.tokens.eos ?? undefined;
  }

  tokenize(text: string, options: { special: boolean; addBos: boolean }): number[] {
    const tokens = this.llamaModel.tokenize(text, options.special) as number[];
    const bos = this.bosToken;
    if (options.addBos && bos !== undefined && this.llamaModel.tokens.shouldPrependBosToken && tokens[0] !== bos)
      return [bos, ...tokens];
    return tokens;
  }

  detokenize(tokens: readonly number[], options: { special: boolean; context?: readonly number[] }): string {
    return this.llamaModel.detokenize(tokens as Token[], options.special, options.context as Token[] | undefined);
  }

  isEog(token: number): boolean {
    return this.llamaModel.isEogToken(token as Token);
  }

  cachedTokens(slot: number): readonly number[] {
    return this.slot(slot).tokens;
  }

  jsonSchemaToGrammar(schema: unknown): Promise<string> {
    return this.inputs.jsonSchemaToGrammar(schema);
  }

  async *run(
    slot: number,
    job: EngineJob,
    signal: AbortSignal,
  ): AsyncGenerator<EngineEvent, void, EngineRewind | undefined> {
    const cache = this.slot(slot);
    const prompt = job.promptTokens.length > 0 ? job.promptTokens : [this.bosToken ?? 0];
    if (prompt.length >= this.model.contextSize)
      throw new RangeError(
        `a prompt of ${prompt.length} tokens does not fit the ${this.model.contextSize}-token context`,
      );
    const grammar = job.sampling.grammar ? await this.inputs.grammar(job.sampling.grammar) : undefined;
    if (signal.aborted) return;
    const reusing = this.loop.exclusive(() => cache.reusePrefix(prompt));
    const reused = typeof reusing === 'number' ? reusing : await reusing;
    // Prompt + generated tokens; index i is the token at context position i.
    const history = [...prompt];
    const positionBans = job.rewindable ? new Map<number, Set<number>>() : undefined;
    const sampler = new SlotSampler(
      () => this.spareSamplers.take(slot),
      this.llamaModel,
      // The scheduler clamped it already; a job from anywhere else must not reach llama.cpp unbounded either.
      { ...job, sampling: clampSampling(job.sampling, this.model) },
      this.inputs.bannedTokens(job.sampling.bannedStrings),
      grammar
        ? this.native.grammarState(new LlamaGrammarEvaluationState({ model: this.llamaModel, grammar }))
        : undefined,
      history,
      positionBans,
    );
    const wantProbabilities = job.logprobs > 0;
    // A safety bound, not the budget: the scheduler fits prompt + maxTokens into the context when it tokenizes the
    // prompt (prompt-tokens.ts), but a job from anywhere else (a bench, a test) must not decode past the KV cache.
    const end = Math.min(prompt.length + job.maxTokens, this.model.contextSize);
    const next = (tokens: readonly number[]): Promise<Step | undefined> => {
      const position = cache.tokens.length;
      return this.loop.decode({
        slot,
        tokens,
        position,
        signal,
        decoded: (decoded) => cache.append(decoded),
        prepare: () => ({ sampler: sampler.prepare(position, tokens), probabilities: wantProbabilities }),
        sample: async (logitIndex, stepped): Promise<Step> => {
          const sampled =
            stepped === undefined
              ? await sampler.sample(this.native.context, logitIndex, history.length, wantProbabilities)
              : sampler.fromStep(stepped);
          // Queue the decode of this token from here, before the batch hands its tokens out, so the next batch
          // starts without waiting for this generator to resume (0.2 ms a token). Only when this generator
          // has taken every earlier token (it is not behind a slow consumer: one token ahead at most) and
          // the token neither ends the text nor reaches the limit.
          const caughtUp = history.length === cache.tokens.length;
          const follows =
            !stopped &&
            caughtUp &&
            sampled.token >= 0 &&
            history.length + 1 < end &&
            !signal.aborted &&
            !this.isEog(sampled.token);
          return { sampled, followed: follows ? next([sampled.token]) : undefined };
        },
      });
    };
    // The whole rest of the prompt goes in as one request: the loop cuts it into batches (abortable between
    // them) and samples the first token from its end.
    let stopped = false;
    let pending = next(prompt.slice(reused));
    let promptReported = false;
    try {
      for (;;) {
        const step = await pending.catch((error: unknown) => {
          throw grammar
            ? grammarDeadEnd(error, this.detokenize(history.slice(prompt.length), { special: false }), job.banEos)
            : error;
        });
        if (step === undefined || signal.aborted) return;
        const { sampled } = step;
        if (!promptReported) {
          promptReported = true;
          this.counters.promptTokensEvaluated += prompt.length - reused;
          this.counters.promptTokensReused += reused;
          yield { type: 'prompt-evaluated', evaluated: prompt.length - reused, reused };
        }
        const token = sampled.token;
        if (token < 0) throw new Error('llama.cpp sampled no token (every candidate was excluded)');
        const eog = this.llamaModel.isEogToken(token as Token);
        if (eog && !job.yieldEog) return;
        history.push(token);
        this.counters.tokensGenerated++;
        // The next decode is queued before the token is handed on: the engine never waits on a slow consumer.
        const more = history.length < end;
        if (more) pending = step.followed ?? next([token]);
        else {
          step.followed?.catch(() => {});
          this.loop.leave(slot);
        }
        const event: EngineEvent = { type: 'token', token, eog };
        if (wantProbabilities) Object.assign(event, topProbabilities(token, sampled.probabilities, job.logprobs));
        const rewind = yield event;
        if (rewind && positionBans) {
          pending.catch(() => {});
          pending = this.rewind(slot, rewind, history, positionBans, prompt.length, sampler, next);
          continue;
        }
        if (!more) return;
      }
    } finally {
      stopped = true;
      this.loop.leave(slot);
      // A decode already in flight is not waited for: the slot is free at once (a generation that stops on
      // EOS or a stop string has its next token in flight, one token's time). Its sampler goes when it is done,
      // and the slot's next job edits the cache only after that batch.
      const settled = settle(pending).then(() => {
        sampler.dispose();
        this.spareSamplers.refill(slot);
        this.settling.delete(settled);
      });
      this.settling.add(settled);
    }
  }

  /**
   * Takes the newest tokens back (KoboldCpp's phrase bans): drops them from the history and the KV cache, bans
   * `rewind.ban` at the first position taken back, and samples that position again.
   */
  private async rewind(
    slot: number,
    rewind: EngineRewind,
    history: number[],
    positionBans: Map<number, Set<number>>,
    promptLength: number,
    sampler: SlotSampler,
    next: (tokens: readonly number[]) => Promise<Step | undefined>,
  ): Promise<Step | undefined> {
    this.loop.leave(slot);
    const keep = Math.max(promptLength, history.length - rewind.rewind);
    history.length = keep;
    for (const position of positionBans.keys()) if (position > keep) positionBans.delete(position);
    const bans = positionBans.get(keep) ?? new Set<number>();
    bans.add(rewind.ban);
    positionBans.set(keep, bans);
    // Position keep is sampled from the logits of the token before it, so that one is decoded again.
    const cache = this.slot(slot);
    const erased = await this.loop.exclusive(() => cache.erase(keep - 1, cache.tokens.length));
    sampler.restart();
    // A cache that cannot drop part of a sequence was cleared: everything before `keep` goes in again.
    return next(erased ? [history[keep - 1] as number] : history.slice(0, keep));
  }

  private slot(slot: number): SlotCache {
    const cache = this.slots[slot];
    if (!cache) throw new RangeError(`slot ${slot} does not exist (${this.slots.length} slots)`);
    return cache;
  }

  async dispose(): Promise<void> {
    await this.loop.idle();
    await Promise.all(this.settling);
    this.spareSamplers.dispose();
    await this.embedder?.dispose();
    await this.context.dispose();
    await this.llamaModel.dispose();
    await this.llama.dispose();
  }
}
