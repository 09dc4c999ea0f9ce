import { ProtocolError } from './client-errors.ts';

/**
 * Bytes in, one parsed JSON value per line out (Ollama's streaming format). Lines are buffered as fragments
 * and joined once per line, not per chunk, so a long line arriving in many small chunks stays linear.
 */
export class NdjsonReader {
  readonly #decoder = new TextDecoder('utf-8');
  readonly #onValue: (value: unknown) => void;
  #fragments: string[] = [];

  constructor(onValue: (value: unknown) => void) {
    this.#onValue = onValue;
  }

  push(bytes: Uint8Array): void {
    this.#feed(this.#decoder.decode(bytes, { stream: true }));
  }

  /**
   * End of body. A last line without its newline is parsed when it is complete JSON; a cut connection leaves
   * a fragment that is not, and that fragment is dropped rather than reported, because the driver already
   * treats the early end as a dropped stream.
   */
  end(): void {
    this.#feed(this.#decoder.decode());
    const last = this.#fragments.join('').trim();
    this.#fragments = [];
    if (!last) return;
    let value: unknown;
    try {
      value = JSON.parse(last);
    } catch {
      return;
    }
    this.#onValue(value);
  }

  #feed(text: string): void {
    let start = 0;
    for (let newline = text.indexOf('\n'); newline !== -1; newline = text.indexOf('\n', start)) {
      this.#fragments.push(text.slice(start, newline));
      start = newline + 1;
      const line = this.#fragments.join('').trim();
      this.#fragments = [];
      if (line) this.#onValue(parseLine(line));
    }
    if (start < text.length) this.#fragments.push(text.slice(start));
  }
}

function parseLine(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch (error) {
    throw new ProtocolError(`invalid JSON line in stream: ${line.slice(0, 120)}`, error);
  }
}
