import type { TokenCut, TokenCuts } from '../token-cuts.ts';

/** What the GGUF says about the tokenizer (`tokenizer.ggml.*`). */
export interface TokenizerMetadata {
  model?: string;
  pre?: string;
  tokens?: readonly string[];
  token_type?: readonly number[];
  add_space_prefix?: boolean;
}

/** llama.cpp's `llama_token_type`: unknown, control and user-defined tokens are matched in the raw text first. */
const RAW_MATCHED_TYPES = new Set([2, 3, 4]);
const SPM_SPACE = '\u2581';

/**
 * BPE pre-tokenizers (`tokenizer.ggml.pre`) whose every regex alternative takes a space only at the start of a
 * match (` ?\p{L}+`, `[^\r\n\p{L}\p{N}]?\p{L}+`, ` ?[^\s\p{L}\p{N}]+`) or inside a run of whitespace, and has no
 * look-behind: a match never holds a non-space followed by a space, so "x| y" is always a match boundary, and
 * matching " y…" alone starts exactly where the whole text's next match does. (Checked against llama.cpp's
 * `llm_tokenizer_bpe` regexes; pre-tokenizers that join words across spaces, such as "superbpe", are absent.)
 */
const BPE_SPACE_SAFE_PRE = new Set([
  'llama3',
  'llama-v3',
  'llama-bpe',
  'gpt-2',
  'qwen2',
  'smollm',
  'olmo',
  'starcoder',
]);

/** Whitespace by any definition llama.cpp's Unicode tables might use (JS `\s` misses a few). */
const WHITESPACE = /[\s\u0085\u180e\u200b-\u200d\u2060\ufeff]/;

interface Codepoints {
  before: string;
  after: string;
}

/** The characters on both sides of `at`, or undefined where `at` splits a surrogate pair or is an end. */
function around(text: string, at: number): Codepoints | undefined {
  if (at <= 0 || at >= text.length) return undefined;
  const next = text.charCodeAt(at);
  if (next >= 0xdc00 && next <= 0xdfff && at > 0) {
    const prev = text.charCodeAt(at - 1);
    if (prev >= 0xd800 && prev <= 0xdbff) return undefined;
  }
  const lowBefore = text.charCodeAt(at - 1);
  const startBefore =
    lowBefore >= 0xdc00 && lowBefore <= 0xdfff && at >= 2 && (text.charCodeAt(at - 2) & 0xfc00) === 0xd800
      ? at - 2
      : at - 1;
  const endAfter = (next & 0xfc00) === 0xd800 && ((text.charCodeAt(at + 1) || 0) & 0xfc00) === 0xdc00 ? at + 2 : at + 1;
  return { before: text.slice(startBefore, at), after: text.slice(at, endAfter) };
}

/** The raw-matched tokens (specials and user-defined) indexed by their first and last character. */
class RawTokens {
  private readonly byFirst = new Map<string, string[]>();
  private readonly byLast = new Map<string, string[]>();

  constructor(texts: readonly string[]) {
    for (const text of texts) {
      if (text === '') continue;
      const first = text[0] as string;
      const last = text[text.length - 1] as string;
      RawTokens.add(this.byFirst, first, text);
      RawTokens.add(this.byLast, last, text);
    }
  }

  private static add(map: Map<string, string[]>, key: string, text: string): void {
    const list = map.get(key);
    if (list) list.push(text);
    else map.set(key, [text]);
  }

  /** A raw-matched token ends at `at` or starts there: the tokenizer's fragments (and space prefix) change there. */
  touches(text: string, at: number): boolean {
    const after = this.byFirst.get(text[at] ?? '');
    if (after?.some((token) => text.startsWith(token, at))) return true;
    const before = this.byLast.get(text[at - 1] ?? '');
    return before?.some((token) => text.endsWith(token, at)) ?? false;
  }
}

/** Every pair of adjacent characters inside any piece, with spaces written as SentencePiece's `▁`. */
function piecePairs(pieces: readonly string[]): Set<string> {
  const pairs = new Set<string>();
  for (const piece of pieces) {
    const chars = [...piece.replaceAll(' ', SPM_SPACE)];
    for (let i = 1; i < chars.length; i++) pairs.add(`${chars[i - 1]}${chars[i]}`);
  }
  return pairs;
}

/** A character as llama.cpp sees it: spaces escaped, and a lone surrogate encoded by Node as U+FFFD. */
function spm(char: string): string {
  if (char === ' ') return SPM_SPACE;
  return char.length === 1 && (char.charCodeAt(0) & 0xf800) === 0xd800 ? '\ufffd' : char;
}

/**
 * SentencePiece (`tokenizer.ggml.model = "llama"`): llama.cpp escapes spaces as `▁` and merges adjacent symbols
 * only into pieces of the vocabulary, over the whole fragment. A merge across a cut between characters `a` and
 * `b` would make a piece containing `ab`; when no piece does, no merge crosses, both sides merge independently
 * (merges on one side never change a candidate on the other), and unknown symbols fall back to bytes one by one.
 * So the tokens of the sides, joined, are the tokens of the whole, with two corrections for the space llama.cpp
 * puts before a fragment (`add_space_prefix`, on by default): if the right side starts with a space, that
 * space is left out and the prefix stands in for it; otherwise the prefix `▁` is one extra token (no piece holds
 * `▁b`, so it stays alone) that is dropped. Cuts touching a raw-matched token are refused: the tokenizer splits
 * fragments there and re-adds the prefix after a special token.
 */
function spmCuts(meta: TokenizerMetadata): TokenCuts {
  const pieces = meta.tokens ?? [];
  const pairs = piecePairs(pieces);
  const raw = new RawTokens(pieces.filter((_, id) => RAW_MATCHED_TYPES.has(meta.token_type?.[id] ?? 1)));
  const addsPrefix = meta.add_space_prefix ?? true;
  return {
    cutAt(text: string, at: number): TokenCut | undefined {
      const chars = around(text, at);
      if (!chars) return undefined;
      const a = spm(chars.before);
      const b = spm(chars.after);
      if (pairs.has(`${a}${b}`) || raw.touches(text, at)) return undefined;
      if (!addsPrefix) return { rightStart: at, dropFirst: 0 };
      if (b === SPM_SPACE) {
        // The right side loses its space to the prefix: it must then start with plain text, not end there.
        if (at + 1 >= text.length || raw.touches(text, at + 1)) return undefined;
        return { rightStart: at + 1, dropFirst: 0 };
      }
      return pairs.has(`${SPM_SPACE}${b}`) ? undefined : { rightStart: at, dropFirst: 1 };
    },
  };
}

/**
 * Letters every Unicode version (so llama.cpp's tables too) counts as `\p{L}`: ASCII, CJK ideographs, kana,
 * Hangul syllables. And punctuation no version counts as a letter, digit or space: ASCII, CJK, fullwidth.
 */
const STABLE_LETTER = /^[A-Za-z\u3041-\u3096\u30a1-\u30fa\u4e00-\u9fff\uac00-\ud7a3]$/;
const STABLE_PUNCTUATION = /^[!-/:-@[-`{-~\u3001-\u3003\u3008-\u3011\u3014-\u301f\uff01-\uff0f\uff1a-\uff20]$/;

/**
 * Byte-level BPE with a pre-tokenizer from `BPE_SPACE_SAFE_PRE`: merges never cross a pre-token boundary, and two
 * places always are one. "x| y" (a non-space, then one space, then a non-space): no match holds a non-space
 * followed by a space. "a|." (a letter, then punctuation), which lets texts without spaces (CJK) be cut too: a
 * match holding the letter is a run of letters (or a contraction ending in one) and stops before punctuation,
 * and the punctuation starts a match whether or not the letter precedes it. llama.cpp's BPE ignores
 * `add_space_prefix`. Raw-matched tokens are handled as for SentencePiece, and none may hold the pair either.
 */
function bpeCuts(meta: TokenizerMetadata): TokenCuts {
  const pieces = meta.tokens ?? [];
  const rawTexts = pieces.filter((_, id) => RAW_MATCHED_TYPES.has(meta.token_type?.[id] ?? 1));
  const raw = new RawTokens(rawTexts);
  const rawPairs = piecePairs(rawTexts);
  return {
    cutAt(text: string, at: number): TokenCut | undefined {
      if (at <= 0 || at + 1 >= text.length) return undefined;
      const before = text[at - 1] as string;
      const here = text[at] as string;
      if (here === ' ') {
        if (WHITESPACE.test(before) || WHITESPACE.test(text[at + 1] as string)) return undefined;
      } else if (!STABLE_LETTER.test(before) || !STABLE_PUNCTUATION.test(here)) return undefined;
      if (rawPairs.has(`${spm(before)}${spm(here)}`) || raw.touches(text, at) || raw.touches(text, at + 1))
        return undefined;
      return { rightStart: at, dropFirst: 0 };
    },
  };
}

/**
 * The exact cuts of the model's tokenizer, or undefined where we cannot prove any (WordPiece, Unigram, RWKV, and
 * BPE pre-tokenizers not checked): long texts are then sliced at bounded lengths, see token-cuts.ts.
 */
export function tokenizerCuts(meta: TokenizerMetadata | undefined): TokenCuts | undefined {
  if (!meta?.tokens?.length) return undefined;
  if (meta.model === 'llama') return spmCuts(meta);
  if (meta.model === 'gpt2' && meta.pre !== undefined && BPE_SPACE_SAFE_PRE.has(meta.pre)) return bpeCuts(meta);
  return undefined;
}
