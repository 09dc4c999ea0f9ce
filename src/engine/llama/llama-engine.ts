import { basename } from 'node:path';
import {
  getLlama,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaGrammar,
  LlamaLogLevel,
  type LlamaModel,
  type Token,
} from 'node-llama-cpp';
import type { ChatMessage, ChatPrompt } from '../../core/chat-message.ts';
import { KindlingError } from '../../core/kindling-error.ts';
import type { ModelInfo } from '../../core/model-info.ts';
import {
  type Engine,
  type EngineCounters,
  type EngineEvent,
  type EngineJob,
  type EngineRewind,
  zeroCounters,
} from '../engine.ts';
import { autoSlotCount, releaseAfterTurn } from './context-plan.ts';
import { DecodeStep } from './decode-step.ts';
import { LlamaChatTemplate } from './llama-chat-template.ts';
import { LlamaEmbedder } from './llama-embedder.ts';
import { llamaEvaluateOptions, reuseSequencePrefix } from './llama-options.ts';
import { enablePersistentThreadpool, type PersistentThreadpool } from './persistent-threadpool.ts';
import { sequenceOrderedBatches } from './sequence-ordered-batch.ts';
import { topProbabilities } from './top-probabilities.ts';

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
}

/** The only module that talks to node-llama-cpp: model, one context, one sequence per slot. */
export class LlamaEngine implements Engine {
  private readonly grammars = new Map<string, Promise<LlamaGrammar>>();
  private readonly bannedCache = new Map<string, number[]>();
  private chatTemplate?: LlamaChatTemplate | null;
  private embedder?: LlamaEmbedder;
  private readonly step: DecodeStep;

  private constructor(
    private readonly llama: Llama,
    private readonly llamaModel: LlamaModel,
    private readonly context: LlamaContext,
    private readonly sequences: LlamaContextSequence[],
    readonly model: ModelInfo,
    private readonly batchSize: number,
    readonly counters: EngineCounters,
    releaseAfterTurn: boolean,
    private readonly threadpool: PersistentThreadpool,
  ) {
    this.step = new DecodeStep(releaseAfterTurn);
  }

  static async load(options: LlamaEngineOptions): Promise<LlamaEngine> {
    // Before node-llama-cpp's first decode, so that its contexts get the pool.
    const threadpool = enablePersistentThreadpool();
    const llama = await getLlama({
      gpu: options.gpuLayers === 0 ? false : 'auto',
      maxThreads: options.threads,
      logLevel: LlamaLogLevel.error,
      progressLogs: false,
    });
    const llamaModel = await llama.loadModel({
      modelPath: options.modelPath,
      gpuLayers: options.gpuLayers === 'auto' ? 'auto' : options.gpuLayers,
    });
    const contextSize = Math.min(options.contextSize, Math.max(llamaModel.trainContextSize, 256));
    const batchSize = options.batchSize ?? 512;
    const slots = options.slots === 'auto' ? await autoSlotCount(llama, llamaModel, contextSize) : options.slots;
    const counters = zeroCounters();
    let created: LlamaContext | undefined;
    const context = await llamaModel.createContext({
      contextSize,
      sequences: slots,
      threads: { ideal: options.threads, min: options.threads },
      batchSize,
      batching: {
        // After this turn's microtasks, not a loop phase later: every decode DecodeStep released is queued by
        // then, and a gap before a decode is what the prebuilt binary pays most for (node-llama-cpp's default,
        // setImmediate, streamed one client on four slots 4-6 % slower; bench/server-ab.ts --parallel 4).
        dispatchSchedule: (dispatch) => process.nextTick(dispatch),
        itemPrioritizationStrategy: sequenceOrderedBatches(() => created, counters),
      },
    });
    created = context;
    const sequences = Array.from({ length: slots }, () => context.getSequence());
    const metadata = llamaModel.fileInfo.metadata as {
      general?: { name?: string; architecture?: string };
      tokenizer?: { chat_template?: string; ggml?: { tokens?: readonly string[] } };
    };
    const embedder = LlamaEmbedder.forModel(llamaModel, { threads: options.threads, contextSize });
    const info: ModelInfo = {
      name: basename(options.modelPath).replace(/\.gguf$/i, ''),
      path: options.modelPath,
      contextSize,
      trainContextSize: llamaModel.trainContextSize,
      vocabularySize: metadata.tokenizer?.ggml?.tokens?.length ?? 0,
      sizeBytes: llamaModel.size,
      parameterCount: llamaModel.fileInsights.totalParameters,
      architecture: metadata.general?.architecture ?? 'unknown',
      chatTemplate: metadata.tokenizer?.chat_template,
      canEmbed: embedder !== undefined,
      engineBuild: `llama.cpp ${llama.llamaCppRelease.release}, ${llama.buildType === 'localBuild' ? 'local build (npm run build:engine)' : 'prebuilt binary'}, ${llama.gpu === false ? 'CPU' : llama.gpu}, ${threadpool.loaded ? 'persistent thread pool' : `no persistent thread pool (${threadpool.reason})`}`,
      placeholder: options.placeholder ?? false,
    };
    const engine = new LlamaEngine(
      llama,
      llamaModel,
      context,
      sequences,
      info,
      batchSize,
      counters,
      releaseAfterTurn(llama, llamaModel, options.threads),
      threadpool,
    );
    engine.embedder = embedder;
    return engine;
  }

  embed(text: string): Promise<number[]> {
    if (!this.embedder)
      throw new KindlingError('not_supported', `The loaded model '${this.model.name}' does not provide embeddings.`);
    return this.embedder.embed(text);
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
    return this.sequences.length;
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
    return this.sequence(slot).contextTokens;
  }

  /** Compiles (once per distinct text) a GBNF grammar; a grammar llama.cpp rejects is the client's 400. */
  async grammar(gbnf: string): Promise<LlamaGrammar> {
    let grammar = this.grammars.get(gbnf);
    if (!grammar) {
      grammar = this.llama.createGrammar({ grammar: gbnf });
      this.grammars.set(gbnf, grammar);
      if (this.grammars.size > 64) this.grammars.delete(this.grammars.keys().next().value as string);
    }
    try {
      return await grammar;
    } catch (error) {
      this.grammars.delete(gbnf);
      throw KindlingError.badInput(
        'grammar',
        `llama.cpp could not parse the GBNF grammar (${error instanceof Error ? error.message : error})`,
      );
    }
  }

  async jsonSchemaToGrammar(schema: unknown): Promise<string> {
    try {
      // biome-ignore lint/suspicious/noExplicitAny: node-llama-cpp types the schema statically; ours arrives at run time.
      const grammar = await this.llama.createGrammarForJsonSchema(schema as any);
      return grammar.grammar;
    } catch (error) {
      throw KindlingError.badInput(
        'schema',
        `cannot turn this JSON schema into a grammar (${error instanceof Error ? error.message : error})`,
      );
    }
  }

  /** Every token whose text contains one of the banned strings, case-insensitively. */
  private bannedTokens(strings: readonly string[]): number[] {
    if (strings.length === 0) return [];
    const key = strings.join('\u0000');
    let banned = this.bannedCache.get(key);
    if (!banned) {
      const needles = strings.map((s) => s.toLowerCase()).filter((s) => s.length > 0);
      banned = [];
      const vocab = this.model.vocabularySize;
      for (let token = 0; token < vocab; token++) {
        const text = this.llamaModel.detokenize([token as Token], false).toLowerCase();
        if (text && needles.some((needle) => text.includes(needle))) banned.push(token);
      }
      this.bannedCache.set(key, banned);
    }
    return banned;
  }

  async *run(
    slot: number,
    job: EngineJob,
    signal: AbortSignal,
  ): AsyncGenerator<EngineEvent, void, EngineRewind | undefined> {
    const sequence = this.sequence(slot);
    const prompt = job.promptTokens.length > 0 ? job.promptTokens : [this.bosToken ?? 0];
    const grammar = job.sampling.grammar ? await this.grammar(job.sampling.grammar) : undefined;
    const reused = await reuseSequencePrefix(sequence, prompt);
    const rest = prompt.slice(reused);
    // Evaluate the prompt in batch-sized pieces so an abort lands within one batch, not after the whole prompt.
    // The last piece goes in with the first sampling step: one decode call fewer before the first token.
    const lastPiece = Math.max(0, rest.length - this.batchSize);
    for (let i = 0; i < lastPiece; i += this.batchSize) {
      if (signal.aborted) return;
      await sequence.evaluateWithoutGeneratingNewTokens(
        rest.slice(i, Math.min(i + this.batchSize, lastPiece)) as Token[],
      );
    }
    if (signal.aborted) return;
    this.counters.promptTokensEvaluated += rest.length;
    this.counters.promptTokensReused += reused;
    yield { type: 'prompt-evaluated', evaluated: rest.length, reused };

    // Prompt + generated tokens; index i is the token at context position i.
    const history = [...prompt];
    const positionBans = job.rewindable ? new Map<number, Set<number>>() : undefined;
    const options = llamaEvaluateOptions(
      this.llamaModel,
      job,
      grammar,
      () => history,
      this.bannedTokens(job.sampling.bannedStrings),
      positionBans,
    );
    const wantProbabilities = job.logprobs > 0;
    let input = rest.slice(lastPiece) as Token[];
    for (;;) {
      const generator = sequence.evaluateWithMetadata(input, { probabilities: wantProbabilities }, options);
      let rewind: EngineRewind | undefined;
      // Every decode after the prompt goes through the shared step, so all generating slots share each batch.
      // The next one is asked for as soon as a token arrives (never past max tokens or the context): the
      // engine does not wait on a slow consumer.
      let pending = this.step.next(slot, () => generator.next());
      try {
        for (;;) {
          const step = await pending;
          if (step.done || signal.aborted) return;
          const output = step.value;
          const token = output.token as number;
          history.push(token);
          this.counters.tokensGenerated++;
          const more = history.length < Math.min(prompt.length + job.maxTokens, this.model.contextSize);
          if (more) pending = this.step.next(slot, () => generator.next());
          else this.step.leave(slot);
          const event: EngineEvent = { type: 'token', token, eog: this.llamaModel.isEogToken(output.token) };
          if (wantProbabilities) {
            const probabilities = (output as { probabilities?: Map<Token, number> }).probabilities;
            Object.assign(event, topProbabilities(token, probabilities, job.logprobs));
          }
          rewind = yield event;
          if (rewind) break;
          if (!more) return;
        }
      } finally {
        this.step.leave(slot);
        // The decode in flight finishes before the sequence is touched again (return() queues behind it).
        pending.catch(() => {});
        await generator.return(undefined);
      }
      if (!rewind || !positionBans || signal.aborted) return;
      // Take the newest tokens back: drop them from the KV cache and sample their first position again.
      const keep = Math.max(prompt.length, history.length - rewind.rewind);
      history.length = keep;
      for (const position of positionBans.keys()) if (position > keep) positionBans.delete(position);
      const bans = positionBans.get(keep) ?? new Set<number>();
      bans.add(rewind.ban);
      positionBans.set(keep, bans);
      if (sequence.nextTokenIndex > keep - 1) {
        await sequence.eraseContextTokenRanges([{ start: keep - 1, end: sequence.nextTokenIndex }]);
      }
      input = [history[keep - 1] as Token];
    }
  }

  private sequence(slot: number): LlamaContextSequence {
    const sequence = this.sequences[slot];
    if (!sequence) throw new RangeError(`slot ${slot} does not exist (${this.sequences.length} slots)`);
    return sequence;
  }

  async dispose(): Promise<void> {
    await this.embedder?.dispose();
    await this.context.dispose();
    await this.llamaModel.dispose();
    await this.llama.dispose();
  }
}
