import type { SpmTokenizer } from './spm-tokenizer.ts';

/**
 * Tokenised stories, each wrapped as <s> story </s> — exactly what llama.cpp feeds the model for a
 * prompt (BOS, then the text with a leading space) and where we want it to stop (EOS).
 * All stories sit end to end in one array so a training window can run on into the next story.
 */
export class StoryDataset {
  readonly tokens: Uint16Array;
  /** Index in `tokens` of each story's BOS. */
  readonly starts: Int32Array;

  constructor(stories: readonly string[], tokenizer: SpmTokenizer) {
    const { bos, eos } = tokenizer.vocab;
    const all: number[] = [];
    const starts: number[] = [];
    for (const story of stories) {
      starts.push(all.length);
      all.push(bos);
      for (const id of tokenizer.encode(story)) all.push(id);
      all.push(eos);
    }
    this.tokens = Uint16Array.from(all);
    this.starts = Int32Array.from(starts);
  }

  get storyCount(): number {
    return this.starts.length;
  }

  /** The tokens of story i alone, BOS to EOS inclusive. */
  story(i: number): Uint16Array {
    const end = i + 1 < this.starts.length ? (this.starts[i + 1] as number) : this.tokens.length;
    return this.tokens.subarray(this.starts[i] as number, end);
  }

  /**
   * A training window of T inputs and T next-token targets that starts at story i's BOS, as a prompt
   * does at inference; null when the corpus ends before the window does.
   */
  window(i: number, T: number): { inputs: Uint16Array; targets: Uint16Array } | null {
    const start = this.starts[i] as number;
    if (start + T + 1 > this.tokens.length) return null;
    return { inputs: this.tokens.subarray(start, start + T), targets: this.tokens.subarray(start + 1, start + T + 1) };
  }
}
