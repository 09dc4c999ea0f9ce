/** Token ids held as slices (a multi-million-token list is never copied into one array). */
export interface TokenList {
  chunks: readonly (readonly number[])[];
  count: number;
}

/**
 * A route's answer that is not a plain JSON object (a plain object a handler returns is sent as JSON): a body
 * already in its wire form, or a JSON object with a token id list long enough that the server writes it in
 * pieces instead of one `JSON.stringify` that would hold the event loop.
 */
export class Answer {
  private constructor(
    readonly contentType: string,
    readonly text: string | undefined,
    readonly fields: Record<string, unknown> | undefined,
    readonly ids: TokenList | undefined,
  ) {}

  /** A JSON object, where a plain return value cannot say it (a generation route's immediate answer). */
  static json(fields: Record<string, unknown>): Answer {
    return new Answer('application/json; charset=utf-8', undefined, fields, undefined);
  }

  /** A body sent as it is (a stored JSON file, one NDJSON line). */
  static text(text: string, contentType: string): Answer {
    return new Answer(contentType, text, undefined, undefined);
  }

  /** `{ ...fields, ids: [...] }`. */
  static withIds(fields: Record<string, unknown>, ids: TokenList): Answer {
    return new Answer('application/json; charset=utf-8', undefined, fields, ids);
  }
}
