import { SPACE_MARK, TokenType, type Vocabulary } from '../../src/gguf/vocabulary.ts';

/**
 * A re-implementation of llama.cpp's SentencePiece ("llama" vocab) tokenizer (`llm_tokenizer_spm`), so the
 * trainer sees exactly the token ids llama.cpp will feed the exported model: start from UTF-8 characters,
 * repeatedly merge the adjacent pair whose joined text is a vocab piece with the highest score (leftmost on
 * ties), and fall back to `<0xXX>` byte tokens for characters that are not pieces.
 *
 * Our trained vocabularies never hold a piece with U+2581 after its first character or a piece spanning a
 * newline, so no merge can cross a word boundary; that lets us tokenize word by word and cache each word.
 */
export class SpmTokenizer {
  private readonly ids = new Map<string, number>();
  private readonly cache = new Map<string, number[]>();
  private readonly byteIds: number[] = [];

  constructor(readonly vocab: Vocabulary) {
    vocab.tokens.forEach((t, i) => {
      if (!this.ids.has(t)) this.ids.set(t, i);
    });
    for (let b = 0; b < 256; b++) {
      const id = this.ids.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
      if (id === undefined) throw new Error('vocabulary lacks byte-fallback tokens');
      this.byteIds.push(id);
    }
  }

  /** Token ids of `text` as llama.cpp produces them with a space prefix and no BOS/EOS. */
  encode(text: string): number[] {
    const escaped = SPACE_MARK + text.replaceAll(' ', SPACE_MARK);
    const out: number[] = [];
    // Words start at U+2581; newlines stand alone.
    for (const word of escaped.match(/\n|\u2581[^\u2581\n]*|[^\u2581\n]+/g) ?? []) {
      let ids = this.cache.get(word);
      if (!ids) {
        ids = this.encodeWord(word);
        if (this.cache.size < 200_000) this.cache.set(word, ids);
      }
      for (const id of ids) out.push(id);
    }
    return out;
  }

  decode(ids: readonly number[]): string {
    const bytes: number[] = [];
    const enc = new TextEncoder();
    for (const id of ids) {
      const type = this.vocab.types[id];
      const token = this.vocab.tokens[id] ?? '';
      if (type === TokenType.byte) bytes.push(Number.parseInt(token.slice(3, 5), 16));
      else if (type === TokenType.normal || type === TokenType.userDefined)
        bytes.push(...enc.encode(token.replaceAll(SPACE_MARK, ' ')));
    }
    const text = new TextDecoder().decode(new Uint8Array(bytes));
    return text.startsWith(' ') ? text.slice(1) : text;
  }

  private encodeWord(word: string): number[] {
    // Symbols as a linked list over the characters, like llama.cpp's llm_symbol.
    const text = [...word];
    const n = text.length;
    const next = Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : -1));
    const sym = text.slice();
    const alive = new Array<boolean>(n).fill(true);
    for (;;) {
      // Highest-scoring bigram, leftmost on ties; words are short, so a linear scan beats a heap here.
      let best = -1;
      let bestScore = Number.NEGATIVE_INFINITY;
      for (let i = 0; i !== -1 && i < n; i = next[i] as number) {
        const j = next[i] as number;
        if (j === -1) break;
        const id = this.ids.get((sym[i] as string) + (sym[j] as string));
        if (id === undefined) continue;
        const score = this.vocab.scores[id] as number;
        if (score > bestScore) {
          bestScore = score;
          best = i;
        }
      }
      if (best === -1) break;
      const j = next[best] as number;
      sym[best] = (sym[best] as string) + (sym[j] as string);
      alive[j] = false;
      next[best] = next[j] as number;
    }
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      if (!alive[i]) continue;
      const id = this.ids.get(sym[i] as string);
      if (id !== undefined) out.push(id);
      else for (const b of new TextEncoder().encode(sym[i])) out.push(this.byteIds[b] as number);
    }
    return out;
  }
}
