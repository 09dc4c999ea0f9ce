import type { Llama, LlamaGrammar, LlamaModel, Token } from 'node-llama-cpp';
import { checkGbnf } from '../../core/gbnf-check.ts';
import { KindlingError } from '../../core/kindling-error.ts';

/**
 * A request's sampling texts turned into what llama.cpp samples with, cached per distinct text: GBNF grammars,
 * JSON schemas, banned strings. A text llama.cpp rejects is the client's 400.
 */
export class SamplingInputs {
  private readonly grammars = new Map<string, Promise<LlamaGrammar>>();
  private readonly bannedCache = new Map<string, number[]>();

  constructor(
    private readonly llama: Llama,
    private readonly model: LlamaModel,
    private readonly vocabularySize: number,
  ) {}

  /** Compiles (once per distinct text) a GBNF grammar. */
  async grammar(gbnf: string): Promise<LlamaGrammar> {
    let grammar = this.grammars.get(gbnf);
    if (!grammar) {
      // Last line of defence: every route checks first, but llama.cpp's parser must never see an unchecked text.
      checkGbnf(gbnf);
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

  /**
   * Every token whose text contains one of the banned strings, case-insensitively. Tokens are looked up through an
   * index of the characters and character pairs of every token's text (built on first use), so each banned string
   * tests only the tokens that share its rarest pair of characters, not the whole vocabulary (768 strings scanned
   * over a 150k-token vocabulary held the event loop for 1.5 s).
   */
  bannedTokens(strings: readonly string[]): number[] {
    if (strings.length === 0) return [];
    const key = strings.join('\u0000');
    let banned = this.bannedCache.get(key);
    if (!banned) {
      const { texts, tokensWith } = this.vocabularyIndex();
      const found = new Set<number>();
      for (const needle of new Set(strings.map((s) => s.toLowerCase()).filter((s) => s.length > 0))) {
        // A token containing the needle contains each of its character pairs: only the rarest pair's tokens are tested.
        let candidates = tokensWith.get(needle.slice(0, 2)) ?? [];
        for (let i = 1; i + 1 < needle.length && candidates.length > 0; i++) {
          const pair = tokensWith.get(needle.slice(i, i + 2)) ?? [];
          if (pair.length < candidates.length) candidates = pair;
        }
        for (const token of candidates) if (needle.length <= 2 || texts[token]?.includes(needle)) found.add(token);
      }
      banned = [...found].sort((a, b) => a - b);
      this.bannedCache.set(key, banned);
      if (this.bannedCache.size > 64) this.bannedCache.delete(this.bannedCache.keys().next().value as string);
    }
    return banned;
  }

  private vocabulary?: { texts: string[]; tokensWith: Map<string, number[]> };

  /** Each token's lower-cased text, and the tokens whose text contains each character and each pair of them. */
  private vocabularyIndex(): { texts: string[]; tokensWith: Map<string, number[]> } {
    if (!this.vocabulary) {
      const texts: string[] = [];
      const tokensWith = new Map<string, number[]>();
      for (let token = 0; token < this.vocabularySize; token++) {
        const text = this.model.detokenize([token as Token], false).toLowerCase();
        texts.push(text);
        const keys = new Set<string>();
        for (let i = 0; i < text.length; i++) {
          keys.add(text.slice(i, i + 1));
          if (i + 1 < text.length) keys.add(text.slice(i, i + 2));
        }
        for (const key of keys) {
          const list = tokensWith.get(key);
          if (list) list.push(token);
          else tokensWith.set(key, [token]);
        }
      }
      this.vocabulary = { texts, tokensWith };
    }
    return this.vocabulary;
  }
}

/**
 * llama.cpp fails a sample when the grammar allows no token at all: it is complete and the end-of-text token is
 * banned, or it needs a character or token id this model's vocabulary lacks. That is the request's grammar, not
 * a model failure: a 400 saying so (before any text was sent; a stream ends with it as its error).
 */
export function grammarDeadEnd(error: unknown, generated: string, banEos: boolean): unknown {
  const message = error instanceof Error ? error.message : String(error);
  if (!message.includes('Unexpected empty grammar stack')) return error;
  const after = generated ? `after ${JSON.stringify(generated.slice(-80))}` : 'at the start';
  const why = banEos
    ? 'it is complete and ban_eos_token forbids ending, or it needs a character or token this model does not have'
    : 'it needs a character or token this model does not have';
  return KindlingError.badInput('grammar', `the grammar allows no token of this model ${after} (${why})`);
}
