import type { TokenLogprob } from '../core/stream-part.ts';
import type { PhraseHit, TokenText } from './phrase-ban-buffer.ts';
import { PhraseBanBuffer } from './phrase-ban-buffer.ts';
import { type StopMatch, StopStringHoldback } from './stop-string-holdback.ts';
import { type Detokenize, TokenTextDecoder } from './token-text-decoder.ts';

export interface TextPipelineOptions {
  detokenize: Detokenize;
  promptTokens: readonly number[];
  stopStrings: readonly string[];
  trimStop: boolean;
  /** Phrases to take back and resample when they appear (empty: none). */
  bannedPhrases: readonly string[];
  /** How many take-backs one generation may make before banned phrases are let through. */
  maxRewinds?: number;
}

export interface TextOut {
  text: string;
  tokens: readonly number[];
  logprobs?: TokenLogprob[];
}

export interface PipelineStep {
  emit: TextOut[];
  stop?: StopMatch;
  /** The engine must take back these tokens and forbid `ban` at the first one's position. */
  rewind?: Pick<PhraseHit, 'ban'> & { count: number };
}

type Chunk = TokenText & { logprobs?: TokenLogprob[] };

/**
 * Generated tokens → text a client may see: UTF-8-safe decoding, then phrase bans (held until they
 * cannot become a banned phrase), then stop-string holdback. What leaves here is final: nothing emitted
 * is ever taken back, and streamed text always equals the final text.
 */
export class TextPipeline {
  private decoder: TokenTextDecoder;
  private readonly phrases: PhraseBanBuffer;
  private readonly holdback: StopStringHoldback;
  /** Tokens accepted so far (prompt tail + generated), the context for a decoder restarted after a rewind. */
  private readonly accepted: number[];
  private pendingLogprobs: TokenLogprob[] = [];
  private rewindsLeft: number;

  constructor(private readonly options: TextPipelineOptions) {
    this.accepted = options.promptTokens.slice(-8);
    this.decoder = new TokenTextDecoder(options.detokenize, this.accepted);
    this.phrases = new PhraseBanBuffer(options.bannedPhrases);
    this.holdback = new StopStringHoldback(options.stopStrings, options.trimStop);
    this.rewindsLeft = options.maxRewinds ?? 256;
  }

  push(token: number, logprob?: TokenLogprob): PipelineStep {
    this.accepted.push(token);
    if (logprob) this.pendingLogprobs.push(logprob);
    const decoded = this.decoder.push(token);
    if (!decoded) return { emit: [] };
    const chunk: Chunk = { ...decoded, ...(this.pendingLogprobs.length ? { logprobs: this.pendingLogprobs } : {}) };
    this.pendingLogprobs = [];
    const { release, hit } = this.phrases.push(chunk);
    if (hit && this.rewindsLeft > 0) {
      this.rewindsLeft--;
      this.accepted.length -= hit.rewind.length;
      this.decoder = new TokenTextDecoder(this.options.detokenize, this.accepted);
      return { emit: [], rewind: { count: hit.rewind.length, ban: hit.ban } };
    }
    return this.release(hit ? [...release, ...hit.removed] : release);
  }

  /**
   * Text that arrived decoded already (an upstream server's stream), with its token ids where known: it skips
   * the decoder and phrase bans (the upstream applies those) and goes through stop-string holdback alone.
   */
  pushText(text: string, tokens: readonly number[]): PipelineStep {
    return this.release([{ text, tokens }]);
  }

  /** The generation ended: everything still held is released (or cut at a stop string). */
  flush(): PipelineStep {
    const decoded = this.decoder.flush();
    // Tokens still waiting for the rest of a character keep their logprobs, even if their bytes are dropped.
    const logprobs = this.pendingLogprobs.splice(0);
    const tail: Chunk | undefined =
      decoded || logprobs.length
        ? { ...(decoded ?? { tokens: [], text: '' }), ...(logprobs.length ? { logprobs } : {}) }
        : undefined;
    // No more tokens will come, so a phrase completed by the last bytes can no longer be taken back.
    const pushed = tail ? this.phrases.push(tail) : { release: [] };
    const step = this.release([...pushed.release, ...(pushed.hit?.removed ?? []), ...this.phrases.flush()]);
    if (step.stop) return step;
    const rest = this.holdback.flush();
    if (rest) step.emit.push({ text: rest, tokens: [] });
    return step;
  }

  private release(chunks: readonly Chunk[]): PipelineStep {
    const emit: TextOut[] = [];
    for (const chunk of chunks) {
      const { text, match } = this.holdback.push(chunk.text);
      if (text || chunk.logprobs)
        emit.push({ text, tokens: chunk.tokens, ...(chunk.logprobs ? { logprobs: chunk.logprobs } : {}) });
      if (match) return { emit, stop: match };
    }
    return { emit };
  }
}
