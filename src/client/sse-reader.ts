import { createParser, type EventSourceMessage, type EventSourceParser } from 'eventsource-parser';
import { ProtocolError } from './client-errors.ts';

export type { EventSourceMessage as SseEvent } from 'eventsource-parser';

export interface SseHandlers {
  onEvent(event: EventSourceMessage): void;
  onComment?(comment: string): void;
  onRetry?(retryMs: number): void;
}

/** 16 MiB: far above any real frame, low enough that a server that never sends a blank line cannot eat memory. */
const MAX_BUFFER_CHARS = 16 * 1024 * 1024;

/**
 * Bytes in, SSE events out, for one connection. UTF-8 is decoded with `stream: true` so a character split
 * across two chunks is decoded once both halves arrived; field parsing (comments, `id`, `retry`, multi-line
 * `data`, CR/LF/CRLF even when split across chunks, BOM) is eventsource-parser's. A new reader is made per
 * connection: a half-received frame from a cut connection must never be glued to the next connection's bytes.
 */
export class SseReader {
  readonly #decoder = new TextDecoder('utf-8');
  readonly #parser: EventSourceParser;
  #error: ProtocolError | undefined;

  constructor(handlers: SseHandlers) {
    this.#parser = createParser({
      onEvent: (event) => handlers.onEvent(event),
      onComment: handlers.onComment ? (comment) => handlers.onComment?.(comment) : undefined,
      onRetry: handlers.onRetry ? (ms) => handlers.onRetry?.(ms) : undefined,
      onError: (error) => {
        // Unknown fields (llama.cpp's old `error:` lines) are ignored as the SSE spec says; only a frame that
        // outgrows the buffer is fatal.
        if (error.type === 'max-buffer-size-exceeded') this.#error = new ProtocolError(error.message, error);
      },
      maxBufferSize: MAX_BUFFER_CHARS,
    });
  }

  push(bytes: Uint8Array): void {
    this.feed(this.#decoder.decode(bytes, { stream: true }));
  }

  /** Text input, for sources that already decoded (and for the benchmark of the parser alone). */
  feed(text: string): void {
    if (this.#error) throw this.#error;
    this.#parser.feed(text);
    if (this.#error) throw this.#error;
  }

  /** End of body: flush the decoder. An unterminated last frame is dropped, as the SSE spec requires. */
  end(): void {
    const rest = this.#decoder.decode();
    if (rest) this.feed(rest);
  }
}
