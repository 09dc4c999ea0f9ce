import type { ModelInfo } from '../../core/model-info.ts';
import {
  type Engine,
  type EngineCounters,
  type EngineEvent,
  type EngineJob,
  type EngineRewind,
  zeroCounters,
} from '../engine.ts';
import type { TokenCuts } from '../token-cuts.ts';

export interface FakeEngineScript {
  slots?: number;
  contextSize?: number;
  /** Milliseconds per generated token. */
  tokenDelayMs?: number;
  /** Throw this error after this many tokens (a failure a real model cannot produce on demand). */
  failAfter?: { tokens: number; message: string };
}

/**
 * A scripted engine for scheduler and failure-path unit tests: a "vocabulary" of one character per token
 * (token id = char code), and generation that repeats the prompt's last character forever.
 */
export class FakeEngine implements Engine {
  readonly counters: EngineCounters = zeroCounters();
  readonly model: ModelInfo;
  readonly bosToken = undefined;
  readonly eosToken = 0;
  readonly started: Array<{ slot: number; prompt: string }> = [];
  private readonly caches: number[][];

  constructor(private readonly script: FakeEngineScript = {}) {
    this.caches = Array.from({ length: script.slots ?? 1 }, () => []);
    this.model = {
      name: 'fake',
      path: '',
      contextSize: script.contextSize ?? 4096,
      trainContextSize: 4096,
      vocabularySize: 65536,
      sizeBytes: 0,
      architecture: 'fake',
      canEmbed: false,
      engineBuild: 'fake engine (tests)',
      placeholder: false,
    };
  }

  /** One token per code point: any cut between code points is exact. */
  readonly tokenCuts: TokenCuts = {
    cutAt: (text, at) =>
      at > 0 && at < text.length && (text.charCodeAt(at) & 0xfc00) !== 0xdc00
        ? { rightStart: at, dropFirst: 0 }
        : undefined,
  };

  get slotCount(): number {
    return this.caches.length;
  }
  tokenize(text: string): number[] {
    return [...text].map((c) => c.codePointAt(0) as number);
  }
  detokenize(tokens: readonly number[]): string {
    return tokens.map((t) => (t === 0 ? '' : String.fromCodePoint(t))).join('');
  }
  isEog(token: number): boolean {
    return token === 0;
  }
  cachedTokens(slot: number): readonly number[] {
    return this.caches[slot] ?? [];
  }
  async jsonSchemaToGrammar(): Promise<string> {
    return 'root ::= "{}"';
  }

  async *run(
    slot: number,
    job: EngineJob,
    signal: AbortSignal,
  ): AsyncGenerator<EngineEvent, void, EngineRewind | undefined> {
    const cache = this.caches[slot] as number[];
    let reused = 0;
    while (reused < cache.length && reused < job.promptTokens.length && cache[reused] === job.promptTokens[reused])
      reused++;
    this.caches[slot] = [...job.promptTokens];
    this.started.push({ slot, prompt: this.detokenize(job.promptTokens) });
    this.counters.promptTokensEvaluated += job.promptTokens.length - reused;
    this.counters.promptTokensReused += reused;
    yield { type: 'prompt-evaluated', evaluated: job.promptTokens.length - reused, reused };
    const token = job.promptTokens.at(-1) ?? 120;
    for (let n = 0; !signal.aborted; n++) {
      if (this.script.failAfter && n >= this.script.failAfter.tokens) throw new Error(this.script.failAfter.message);
      await new Promise((resolve) => setTimeout(resolve, this.script.tokenDelayMs ?? 1));
      if (signal.aborted) return;
      this.counters.tokensGenerated++;
      yield { type: 'token', token, eog: false };
    }
  }

  async dispose(): Promise<void> {}
}
