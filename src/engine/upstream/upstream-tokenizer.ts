import { KindlingError } from '../../core/kindling-error.ts';
import type { RemoteTokenizer } from '../engine.ts';
import type { UpstreamHttp } from './upstream-http.ts';
import type { TokenizerRoutes } from './upstream-probe.ts';

type Json = Record<string, unknown>;

function ids(value: unknown, route: string): number[] {
  if (!Array.isArray(value) || !value.every((id) => Number.isInteger(id)))
    throw new KindlingError('unavailable', `The upstream's ${route} answered without a list of token ids.`);
  return value as number[];
}

/**
 * The upstream's own tokenizer, through the routes it has: Kobold's `/api/extra/tokenize` and `/detokenize` on
 * Kindling and KoboldCpp, `/tokenize` and `/detokenize` on llama-server and vLLM. An upstream with neither
 * (Ollama's `/v1`, most hosted APIs) makes every call a 501 that says so.
 */
export class UpstreamTokenizer implements RemoteTokenizer {
  readonly available: boolean;

  constructor(
    private readonly http: UpstreamHttp,
    private readonly routes: TokenizerRoutes,
    /** The upstream's BOS id, when `addBos` adds one: Kobold's route adds it together with parsing special text. */
    private readonly bos: () => number | undefined,
  ) {
    this.available = routes !== 'none';
  }

  private missing(what: string): KindlingError {
    return new KindlingError(
      'not_implemented',
      `${what} needs the model's tokenizer, and the upstream server ${this.http.base} offers no tokenizer route (/tokenize); it is not available over this upstream.`,
    );
  }

  async tokenize(
    text: string,
    options: { special: boolean; addBos: boolean },
    signal?: AbortSignal,
  ): Promise<number[]> {
    try {
      if (this.routes === 'kobold') {
        // Kobold's `special` both adds BOS and parses special-token text: a BOS not asked for is taken off again.
        const body = (await this.http.json(
          '/api/extra/tokenize',
          { prompt: text, special: options.special },
          {
            ...(signal ? { signal } : {}),
          },
        )) as Json;
        const tokens = ids(body.ids, '/api/extra/tokenize');
        const bos = this.bos();
        if (options.special && !options.addBos && bos !== undefined && tokens[0] === bos) return tokens.slice(1);
        return tokens;
      }
      if (this.routes === 'tokenize') {
        const body = (await this.http.json(
          '/tokenize',
          { content: text, prompt: text, add_special: options.addBos, add_special_tokens: options.addBos },
          { ...(signal ? { signal } : {}) },
        )) as Json;
        return ids(body.tokens, '/tokenize');
      }
    } catch (error) {
      throw this.http.failure(error);
    }
    throw this.missing('Tokenizing');
  }

  async detokenize(tokens: readonly number[], options: { special: boolean }, signal?: AbortSignal): Promise<string> {
    if (tokens.length === 0) return '';
    try {
      if (this.routes === 'kobold') {
        const body = (await this.http.json(
          '/api/extra/detokenize',
          { ids: tokens, special: options.special },
          {
            ...(signal ? { signal } : {}),
          },
        )) as Json;
        return typeof body.result === 'string' ? body.result : '';
      }
      if (this.routes === 'tokenize') {
        const body = (await this.http.json('/detokenize', { tokens }, { ...(signal ? { signal } : {}) })) as Json;
        const text = body.content ?? body.prompt;
        return typeof text === 'string' ? text : '';
      }
    } catch (error) {
      throw this.http.failure(error);
    }
    throw this.missing('Detokenizing');
  }
}
