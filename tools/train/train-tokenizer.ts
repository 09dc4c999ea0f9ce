import { buildVocabulary, SPACE_MARK, type Vocabulary } from '../../src/gguf/vocabulary.ts';

export interface TokenizerTrainingOptions {
  /** Total vocabulary size including `<unk>`, `<s>`, `</s>` and the 256 byte-fallback tokens. */
  vocabSize: number;
}

/**
 * Pieces are learned within a letter run or a punctuation run, never across: "time," must end in the
 * same "▁time" token whether or not a comma follows, or a prompt like "Once upon a time" would end in a
 * token the model never saw in training. (At tokenization time llama.cpp does not pre-split; it simply
 * finds no piece that crosses these boundaries.)
 */
const WORD = /\n|\u2581?[\p{L}\p{N}']+|\u2581?[^\p{L}\p{N}'\u2581\n]+|\u2581/gu;

/**
 * Learns a SentencePiece-style ("llama") vocabulary by BPE merges over the corpus's words.
 * Every merged piece is the join of two pieces already in the vocabulary and gets a higher score the
 * earlier it was learned, so llama.cpp's greedy highest-score-first merging can always build it.
 * Words are split before U+2581 (an escaped space), around newlines and between letters and punctuation.
 */
export function trainTokenizer(texts: readonly string[], options: TokenizerTrainingOptions): Vocabulary {
  const wordCounts = new Map<string, number>();
  for (const text of texts) {
    const escaped = SPACE_MARK + text.replaceAll(' ', SPACE_MARK);
    for (const w of escaped.match(WORD) ?? []) wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1);
  }
  const words = [...wordCounts.entries()].map(([w, count]) => ({ symbols: [...w], count }));
  const chars = new Set<string>();
  for (const { symbols } of words) for (const c of symbols) chars.add(c);
  // Characters first, in a stable order, so every string of the corpus is tokenisable without byte fallback.
  const pieces: string[] = [...chars].sort();
  const budget = options.vocabSize - 3 - 256;
  if (pieces.length > budget)
    throw new Error(`vocabSize ${options.vocabSize} cannot hold the corpus's ${pieces.length} characters`);
  const merges: string[] = [];
  while (pieces.length + merges.length < budget) {
    const pairCounts = new Map<string, number>();
    for (const { symbols, count } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = `${symbols[i]}\u0000${symbols[i + 1]}`;
        pairCounts.set(key, (pairCounts.get(key) ?? 0) + count);
      }
    }
    let best = '';
    let bestCount = 1; // a pair seen once is not worth a vocabulary slot
    for (const [key, count] of pairCounts) {
      if (count > bestCount || (count === bestCount && best !== '' && key < best)) {
        best = key;
        bestCount = count;
      }
    }
    if (best === '') break;
    const [a, b] = best.split('\u0000') as [string, string];
    const joined = a + b;
    merges.push(joined);
    for (const word of words) {
      const s = word.symbols;
      const out: string[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
          out.push(joined);
          i++;
        } else out.push(s[i] as string);
      }
      word.symbols = out;
    }
  }
  const vocab = buildVocabulary({ pieces: [...pieces, ...merges] });
  // Scores rank merges: the first learned merge wins, as in BPE; single characters never need a score.
  const firstPiece = 3 + 256;
  for (let i = firstPiece; i < vocab.tokens.length; i++) {
    const mergeIndex = i - firstPiece - pieces.length;
    vocab.scores[i] = mergeIndex < 0 ? -1e6 : -(mergeIndex + 1);
  }
  return vocab;
}
