/** Text decoded from a group of tokens (one token, or several that formed one UTF-8 character). */
export interface TokenText {
  tokens: readonly number[];
  text: string;
}

export interface PhraseHit {
  /** The banned phrase that appeared. */
  phrase: string;
  /** Every token from the one where the phrase began to the newest: the engine takes them back. */
  rewind: number[];
  /** The token the phrase began with: banned at that position when the engine samples again. */
  ban: number;
  /** The held text taken out of the buffer (released as it is when the engine cannot take it back). */
  removed: TokenText[];
}

/**
 * KoboldCpp's "anti-slop" phrase bans: text is held while it could still become a banned phrase
 * (case-insensitively); when a phrase completes, the tokens from the one it began with are handed back
 * for the engine to take back and resample, so the phrase never reaches any client.
 */
export class PhraseBanBuffer {
  private held: TokenText[] = [];
  private readonly phrases: string[];

  constructor(phrases: readonly string[]) {
    this.phrases = [...new Set(phrases.map((p) => p.toLowerCase()).filter((p) => p.length > 0))];
  }

  get active(): boolean {
    return this.phrases.length > 0;
  }

  /** Adds decoded text; returns what is now safe to pass on, or the hit that must be rewound. */
  push(chunk: TokenText): { release: TokenText[]; hit?: PhraseHit } {
    if (!this.active) return { release: [chunk] };
    this.held.push(chunk);
    const lower = this.held.map((entry) => lowerSameLength(entry.text));
    const joined = lower.join('');
    let best: { index: number; phrase: string } | undefined;
    for (const phrase of this.phrases) {
      const index = joined.indexOf(phrase);
      if (index >= 0 && (!best || index < best.index)) best = { index, phrase };
    }
    if (best) {
      const start = this.entryAt(lower, best.index);
      const removed = this.held.splice(start);
      const rewind = removed.flatMap((entry) => entry.tokens);
      return { release: [], hit: { phrase: best.phrase, rewind, ban: rewind[0] as number, removed } };
    }
    // Keep the entries that overlap the longest tail that could still grow into a phrase.
    let tail = 0;
    for (const phrase of this.phrases) {
      for (let n = Math.min(phrase.length - 1, joined.length); n > tail; n--) {
        if (joined.endsWith(phrase.slice(0, n))) {
          tail = n;
          break;
        }
      }
    }
    const keepFrom = this.entryAt(lower, joined.length - tail);
    return { release: this.held.splice(0, keepFrom) };
  }

  /** The generation ended for another reason: everything held is released. */
  flush(): TokenText[] {
    return this.held.splice(0);
  }

  /** Index of the entry containing character `offset` of the joined text (entries.length when past the end). */
  private entryAt(lower: readonly string[], offset: number): number {
    let end = 0;
    for (let i = 0; i < lower.length; i++) {
      end += (lower[i] as string).length;
      if (offset < end) return i;
    }
    return lower.length;
  }
}

/** Lower case without changing the length (a few characters, like 'İ', grow when lowered): offsets stay valid. */
function lowerSameLength(text: string): string {
  const lower = text.toLowerCase();
  if (lower.length === text.length) return lower;
  return [...text].map((c) => (c.toLowerCase().length === c.length ? c.toLowerCase() : c)).join('');
}
