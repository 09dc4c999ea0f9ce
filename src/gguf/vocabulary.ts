/**
 * A SentencePiece-style (`tokenizer.ggml.model = "llama"`) vocabulary as llama.cpp reads it from GGUF.
 * Token types follow llama.cpp's `llama_token_type`: 1 normal, 2 unknown, 3 control, 6 byte.
 */
export interface Vocabulary {
  tokens: string[];
  scores: number[];
  types: number[];
  bos: number;
  eos: number;
  unk: number;
  addBos: boolean;
}

export const TokenType = { normal: 1, unknown: 2, control: 3, userDefined: 4, byte: 6 } as const;

/** SentencePiece writes a leading/inner space as U+2581. */
export const SPACE_MARK = '\u2581';

export interface VocabularyOptions {
  /** Pieces after the specials and the 256 byte tokens, in order; a space is written as a real space. */
  pieces: readonly string[];
  /** Extra control tokens (e.g. `<|im_end|>`), matched as one token when tokenising with special tokens. */
  controlTokens?: readonly string[];
  /** Pad with filler pieces up to this many tokens (benchmark models use 32000 like Llama 2). */
  size?: number | undefined;
}

/**
 * Builds a byte-fallback vocabulary: every string can be tokenised (unknown characters become
 * `<0xXX>` byte tokens), which is what lets tests feed arbitrary UTF-8 through a tiny model.
 * Longer pieces get higher scores so the SPM merger prefers them.
 */
export function buildVocabulary(options: VocabularyOptions): Vocabulary {
  const tokens: string[] = ['<unk>', '<s>', '</s>'];
  const types: number[] = [TokenType.unknown, TokenType.control, TokenType.control];
  const scores: number[] = [0, 0, 0];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(TokenType.byte);
    scores.push(0);
  }
  for (const control of options.controlTokens ?? []) {
    tokens.push(control);
    types.push(TokenType.control);
    scores.push(0);
  }
  const seen = new Set(tokens);
  const add = (piece: string) => {
    const spm = piece.replaceAll(' ', SPACE_MARK);
    if (seen.has(spm)) return;
    seen.add(spm);
    tokens.push(spm);
    types.push(TokenType.normal);
    scores.push(-1000 + [...spm].length * 10 - tokens.length * 1e-3);
  };
  for (const piece of options.pieces) add(piece);
  const size = options.size ?? tokens.length;
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  for (let i = 0; tokens.length < size; i++) {
    let filler = '';
    let n = i;
    do {
      filler += letters[n % 26];
      n = Math.floor(n / 26);
    } while (n > 0);
    add(` ${filler}q`);
  }
  return { tokens, scores, types, bos: 1, eos: 2, unk: 0, addBos: true };
}

const ASCII_PRINTABLE = Array.from({ length: 0x7e - 0x20 + 1 }, (_, i) => String.fromCharCode(0x20 + i));

/** The words our test and benchmark models know as single pieces. */
const TEST_WORDS = [
  ' the',
  ' a',
  ' and',
  ' to',
  ' of',
  ' Once',
  ' upon',
  ' time',
  ' there',
  ' was',
  ' little',
  ' fox',
  ' Hello',
  'Hello',
  ' World',
  ' world',
  'User',
  ' User',
  ':',
  'Assistant',
  ' said',
  ' story',
  ' yes',
  ' no',
  'yes',
  'no',
  ' cat',
  ' dog',
  ' ran',
  ' happy',
  ' end',
  'The',
  ' The',
  ' is',
  ' in',
  ' it',
  ' he',
  ' she',
  ' caf',
  'é',
  ' café',
  '日本',
  '語',
  'ü',
  'ñ',
  ' über',
  '...',
  ' ###',
  ' Instruction',
  ' Response',
];

/** The vocabulary of our generated test models: ASCII, common words, a few multi-byte pieces, ChatML markers. */
export function testVocabulary(size?: number): Vocabulary {
  // SPM merges adjacent pieces only when the joined piece is in the vocabulary, so every word needs its prefixes.
  const prefixes = TEST_WORDS.flatMap((word) =>
    Array.from({ length: [...word].length - 1 }, (_, i) => [...word].slice(0, i + 2).join('')),
  );
  return buildVocabulary({
    pieces: [...ASCII_PRINTABLE, ...prefixes],
    controlTokens: ['<|im_start|>', '<|im_end|>'],
    size,
  });
}
