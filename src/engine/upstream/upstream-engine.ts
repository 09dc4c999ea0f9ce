import type { GenerationRequest } from '../../core/generation-request.ts';
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
import { checkUpstreamRequest, completionBody } from './completion-body.ts';
import { type CompletionUsage, completionChunks } from './completion-stream.ts';
import { UpstreamHttp } from './upstream-http.ts';
import { probeUpstream, type UpstreamFacts } from './upstream-probe.ts';
import { UpstreamTokenizer } from './upstream-tokenizer.ts';

export interface UpstreamEngineOptions {
  /** The upstream's OpenAI-compatible base URL (`http://host:port/v1`). */
  url: string;
  /** Sent as `Authorization: Bearer` (vLLM's `--api-key`, a hosted API's key). */
  apiKey?: string;
  /** `--contextsize` when it was given: caps the upstream's context (and is the context when it reports none). */
  contextSize?: number;
  /** The context when the upstream reports none and none was given. */
  defaultContextSize: number;
  /** Requests sent to the upstream at once; `auto`: llama-server's slot count, else 4. */
  slots: number | 'auto';
  /** JSON schema → GBNF, for `response_format` and Kobold's schema grammars (run here, enforced upstream). */
  jsonSchemaToGrammar(schema: unknown): Promise<string>;
}

/** Unknown vocabulary: any non-negative id is let through to the upstream, which judges it. */
const ANY_VOCABULARY = 2 ** 31 - 1;
/** The short texts whose tokens the chat-template fallback asks for synchronously (chat-template-source.ts). */
const PROBED_TEXTS = ['<|im_start|>', '<|im_end|>'];

const probeKey = (text: string, options: { special: boolean; addBos: boolean }) =>
  `${options.special ? 1 : 0}${options.addBos ? 1 : 0}${text}`;

function modelName(id: string): string {
  const bare = id.replace(/^koboldcpp\//, '');
  const file = bare.split(/[\\/]/).pop() ?? bare;
  return file.replace(/\.gguf$/i, '') || 'upstream';
}

/**
 * An engine that drives another inference server (`kindling serve --upstream <url>`): llama.cpp's llama-server,
 * vLLM, SGLang, TGI, Ollama's `/v1`, or another Kindling. Each job is one streamed `/v1/completions` request (the
 * prompt as token ids where the upstream tokenizes, else as text); the upstream does the tensors, while everything
 * above the engine (queue, keys and resume, stop strings, every protocol) stays Kindling's.
 *
 * The stream's text is handed up with each token event (`text`), so nothing detokenizes here; usage comes from the
 * upstream's final `usage` chunk (requested with `stream_options.include_usage`). Stopping the iterator, or the
 * signal, aborts the upstream request at once, which ends the generation there.
 */
export class UpstreamEngine implements Engine {
  readonly counters: EngineCounters = zeroCounters();
  readonly remoteTokenizer: UpstreamTokenizer;
  private readonly lastPrompts: (readonly number[])[];
  private readonly probed = new Map<string, number[]>();
  private bos: number | undefined;
  private eos: number | undefined;

  private constructor(
    private readonly http: UpstreamHttp,
    readonly facts: UpstreamFacts,
    readonly model: ModelInfo,
    readonly slotCount: number,
    private readonly options: UpstreamEngineOptions,
  ) {
    this.remoteTokenizer = new UpstreamTokenizer(http, facts.tokenizer, () => this.bos);
    this.lastPrompts = Array.from({ length: slotCount }, () => []);
  }

  /** Probes the upstream (a start-up error naming it when it does not answer) and learns its BOS and EOS. */
  static async connect(options: UpstreamEngineOptions): Promise<UpstreamEngine> {
    const http = new UpstreamHttp(options.url, options.apiKey);
    const facts = await probeUpstream(http);
    const reported = facts.contextSize;
    const contextSize =
      options.contextSize !== undefined
        ? Math.min(options.contextSize, reported ?? options.contextSize)
        : (reported ?? options.defaultContextSize);
    const slots = options.slots === 'auto' ? (facts.slots ?? 4) : options.slots;
    const model: ModelInfo = {
      name: modelName(facts.modelId),
      path: http.base,
      contextSize,
      trainContextSize: facts.trainContextSize ?? contextSize,
      vocabularySize: facts.vocabularySize ?? ANY_VOCABULARY,
      sizeBytes: 0,
      architecture: 'upstream',
      chatTemplate: facts.chatTemplate,
      canEmbed: false,
      engineBuild: `upstream ${facts.flavor} server ${http.base}`,
      placeholder: false,
      ...(options.contextSize !== undefined && reported !== undefined && options.contextSize > reported
        ? {
            adjustments: [
              {
                setting: 'contextSize' as const,
                requested: options.contextSize,
                used: reported,
                reason: `the upstream's context is ${reported}`,
              },
            ],
          }
        : {}),
    };
    const engine = new UpstreamEngine(http, facts, model, slots, options);
    await engine.learnTokens();
    return engine;
  }

  /** BOS, and the few short texts the chat fallback tokenizes synchronously, asked once at start-up. */
  private async learnTokens(): Promise<void> {
    if (!this.remoteTokenizer.available) {
      // No tokenizer: no BOS to add, and no ChatML control tokens to find (the chat fallback uses instruct tags).
      for (const text of ['', ...PROBED_TEXTS])
        this.probed.set(probeKey(text, { special: true, addBos: text === '' }), []);
      return;
    }
    const bos = await this.remoteTokenizer.tokenize('', { special: true, addBos: true });
    this.bos = bos.length === 1 ? bos[0] : undefined;
    this.probed.set(probeKey('', { special: true, addBos: true }), bos);
    this.probed.set(probeKey('', { special: true, addBos: false }), []);
    for (const text of PROBED_TEXTS) {
      const options = { special: true, addBos: false };
      this.probed.set(probeKey(text, options), await this.remoteTokenizer.tokenize(text, options));
    }
  }

  get bosToken(): number | undefined {
    return this.bos;
  }
  get eosToken(): number | undefined {
    return this.eos;
  }

  /** Only what was learned at start-up; every other text needs the upstream (`remoteTokenizer`). */
  tokenize(text: string, options: { special: boolean; addBos: boolean }): number[] {
    const known = this.probed.get(probeKey(text, options));
    if (known) return [...known];
    throw new KindlingError(
      'not_implemented',
      `Tokenizing here needs the upstream server ${this.http.base}; this route cannot wait for it.`,
    );
  }

  detokenize(tokens: readonly number[]): string {
    if (tokens.length === 0) return '';
    throw new KindlingError(
      'not_implemented',
      `Detokenizing here needs the upstream server ${this.http.base}; this route cannot wait for it.`,
    );
  }

  isEog(token: number): boolean {
    return this.eos !== undefined && token === this.eos;
  }

  /** The prompt last sent from this slot: the scheduler then sends a continued story back to the same slot. */
  cachedTokens(slot: number): readonly number[] {
    return this.lastPrompts[slot] ?? [];
  }

  checkRequest(request: GenerationRequest): void {
    checkUpstreamRequest(this.facts.flavor, request, this.eos);
  }

  jsonSchemaToGrammar(schema: unknown): Promise<string> {
    return this.options.jsonSchemaToGrammar(schema);
  }

  private body(slot: number, job: EngineJob): Record<string, unknown> {
    // Kindling tokenizes a token-id prompt's text again and adds its own BOS: one BOS, not two.
    const tokens =
      this.facts.flavor === 'kindling' && this.bos !== undefined && job.promptTokens[0] === this.bos
        ? job.promptTokens.slice(1)
        : job.promptTokens;
    const body = completionBody(
      this.facts.flavor,
      this.facts.modelId,
      { ...job, promptTokens: tokens },
      {
        size: this.model.contextSize,
        eos: this.eos,
      },
    );
    // llama-server keeps each slot's KV cache: the same slot there as here reuses a continued prompt's prefix.
    if (this.facts.flavor === 'llama.cpp' && this.facts.slots !== undefined && this.slotCount <= this.facts.slots)
      body.id_slot = slot;
    return body;
  }

  async *run(
    slot: number,
    job: EngineJob,
    signal: AbortSignal,
  ): AsyncGenerator<EngineEvent, void, EngineRewind | undefined> {
    if (signal.aborted) return;
    const controller = new AbortController();
    const stop = () => controller.abort();
    signal.addEventListener('abort', stop, { once: true });
    this.lastPrompts[slot] = job.promptTokens;
    let usage: CompletionUsage | undefined;
    let generated = 0;
    try {
      const response = await this.http.stream('/completions', this.body(slot, job), controller.signal);
      const chunks = completionChunks(response, this.http);
      let finish: string | undefined;
      /** Reads what is left of a stream that is about to end: its usage comes before the last token is handed up. */
      const drain = async () => {
        for await (const rest of chunks) {
          usage = rest.usage ?? usage;
          finish ??= rest.finish;
        }
      };
      let evaluated = false;
      for await (const chunk of chunks) {
        if (!evaluated) {
          evaluated = true;
          yield { type: 'prompt-evaluated', evaluated: job.promptTokens.length, reused: 0 };
        }
        usage = chunk.usage ?? usage;
        finish ??= chunk.finish;
        const hasText = chunk.text !== '' || chunk.tokens.length > 0;
        // The consumer stops at `maxTokens` tokens or at EOS without reading on: the usage must be in hand first.
        const last = finish !== undefined || (hasText && generated + 1 >= job.maxTokens);
        if (last) {
          await drain();
          if (usage) yield this.counted(usage);
        }
        if (hasText) {
          generated++;
          const token = chunk.tokens.at(-1) ?? -1;
          yield { type: 'token', token, eog: false, text: chunk.text, tokens: chunk.tokens };
        }
        if (last) {
          if (finish === 'stop') yield { type: 'token', token: this.eos ?? -1, eog: true, text: '', tokens: [] };
          return;
        }
      }
      if (usage) yield this.counted(usage);
    } catch (error) {
      if (signal.aborted) return;
      throw this.http.failure(error);
    } finally {
      signal.removeEventListener('abort', stop);
      // Returned early (a stop string, the consumer's limit) or aborted: the upstream stops generating now.
      controller.abort();
    }
  }

  private counted(usage: CompletionUsage): EngineEvent {
    const cached = usage.cachedPromptTokens ?? 0;
    this.counters.promptTokensEvaluated += Math.max(0, usage.promptTokens - cached);
    this.counters.promptTokensReused += cached;
    this.counters.tokensGenerated += usage.completionTokens;
    return { type: 'usage', ...usage };
  }

  async dispose(): Promise<void> {}
}
