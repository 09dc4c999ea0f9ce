import { type ServerResponse, validateHeaderName, validateHeaderValue } from 'node:http';
import type { WireMessage } from '../../core/wire-message.ts';
import { type ChunkWriter, chunkWriter } from './chunk-writer.ts';
import { formatWireMessage } from './format-wire-message.ts';
import { type CompressedBody, compressedBody, type StreamEncoding } from './stream-encoding.ts';

export interface StreamResponseOptions {
  contentType: 'text/event-stream' | 'application/x-ndjson';
  /** Send a heartbeat after this much silence (SSE only: a `: ping` comment). 0 disables. */
  heartbeatMs: number;
  /** Cut a reader that has not drained for this long; the generation itself goes on. */
  stalledReaderMs: number;
  headers?: Record<string, string>;
  /** Compress the body (the client asked for it, stream-encoding.ts); each batch is flushed as it is sent. */
  encoding?: StreamEncoding | undefined;
  /**
   * SSE only: the body starts with a comment of this many bytes, for proxies that hold a response back until
   * they have a few KB (the client asked for it; every SSE parser skips comments).
   */
  padBytes?: number | undefined;
}

/**
 * A streaming response on the raw socket: headers go out at once (so a queued client knows it was
 * admitted), writes wait for `drain` (memory stays bounded however slow the reader), silence is filled
 * with heartbeats, and `closed` fires the moment the client goes away.
 */
export class StreamResponse {
  private readonly closedController = new AbortController();
  private heartbeat?: NodeJS.Timeout | undefined;
  private heartbeatText = 'ping';
  private lastWriteAt = performance.now();
  private readonly write: ChunkWriter;
  private readonly compressed: CompressedBody | undefined;

  constructor(
    private readonly res: ServerResponse,
    private readonly options: StreamResponseOptions,
  ) {
    res.on('close', () => {
      this.stopHeartbeat();
      this.closedController.abort();
    });
    // Gone before the stream began (while its request was prepared): 'close' has been and will not come again.
    if (res.destroyed || res.socket?.destroyed) this.closedController.abort();
    // HTTP/1.0 clients get the body delimited by the connection's end, as Node would choose for them. No
    // `connection` header of ours: Node answers the request's own (`close` closes the socket after the body,
    // which a client that said so relies on; claiming keep-alive made it send its next request into a socket
    // the parser had already closed, and that request got a 400).
    const chunked = res.req?.httpVersion === '1.1';
    const encoding = options.encoding;
    const headers: Record<string, string> = {
      'content-type':
        options.contentType === 'text/event-stream'
          ? 'text/event-stream; charset=utf-8'
          : 'application/x-ndjson; charset=utf-8',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
      ...(chunked ? { 'transfer-encoding': 'chunked' } : {}),
      ...(encoding ? { 'content-encoding': encoding, vary: 'accept-encoding' } : {}),
      ...options.headers,
    };
    // Checked before writeHead: a value it rejects half-way leaves the response half-configured (chunked framing
    // already switched on), and the error response that follows would then be framed wrongly.
    for (const [name, value] of Object.entries(headers)) {
      validateHeaderName(name);
      validateHeaderValue(name, value);
    }
    res.writeHead(200, headers);
    res.flushHeaders();
    this.compressed = encoding ? compressedBody(res, encoding) : undefined;
    // Compressed bytes go through the response (the compressor is piped into it); plain ones may skip Node's
    // HTTP layer (chunk-writer.ts).
    this.write = this.compressed ? this.compressed.write : chunkWriter(res, chunked);
    if (options.padBytes && options.contentType === 'text/event-stream')
      this.write(`:${' '.repeat(Math.max(0, options.padBytes - 3))}\n\n`);
    this.armHeartbeat();
  }

  /** Aborts when the client disconnects (or the response ends). */
  get closed(): AbortSignal {
    return this.closedController.signal;
  }

  /** What the next heartbeat comment says (e.g. the queue position). */
  setHeartbeatText(text: string): void {
    this.heartbeatText = text;
  }

  /** Resolves once the reader can take more; true when that meant waiting for `drain`. */
  async send(messages: readonly WireMessage[]): Promise<boolean> {
    if (messages.length === 0 || this.closed.aborted) return false;
    let chunk = '';
    for (const message of messages) chunk += formatWireMessage(message);
    this.lastWriteAt = performance.now();
    if (this.write(chunk)) return false;
    await this.drained();
    return true;
  }

  /**
   * An HTTP/2 stream: its writes leave on the session's next send cycle, never at once, and its socket is
   * shared with every other stream of the connection.
   */
  get multiplexed(): boolean {
    return 'stream' in this.res;
  }

  /** Bytes written but still held by Node for the socket (the kernel's buffer is full: the reader is behind). */
  get backlogBytes(): number {
    return (this.res.socket?.writableLength ?? 0) + this.res.writableLength;
  }

  /**
   * The backlog of an HTTP/2 stream once the session had its turn to send: straight after a write every HTTP/2
   * stream would look behind, and the pacer would slow a reader that keeps up. Only this stream's own bytes
   * count (those flow control holds back for it), not its busy neighbours' on the shared socket.
   */
  async multiplexedBacklogBytes(): Promise<number> {
    await new Promise((resolve) => setImmediate(resolve));
    return this.res.writableLength;
  }

  end(): void {
    this.stopHeartbeat();
    if (this.compressed) this.compressed.end();
    else if (!this.res.writableEnded && !this.res.destroyed) this.res.end();
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      // Raw socket writes (chunk-writer.ts) drain on the socket; Node's own writes drain on the response.
      const socket = this.res.socket;
      const compressor = this.compressed?.drainSource;
      const done = () => {
        clearTimeout(timer);
        this.res.off('drain', done);
        socket?.off('drain', done);
        compressor?.off('drain', done);
        this.closed.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(() => {
        this.res.destroy(new Error('reader stalled'));
        done();
      }, this.options.stalledReaderMs);
      this.res.once('drain', done);
      socket?.once('drain', done);
      compressor?.once('drain', done);
      this.closed.addEventListener('abort', done, { once: true });
    });
  }

  /**
   * One timer for the stream's life, re-armed for the silence still to go when it fires: re-arming it on
   * every write would cost a timer insert and removal per token.
   */
  private armHeartbeat(delayMs = this.options.heartbeatMs): void {
    if (this.options.heartbeatMs <= 0 || this.options.contentType !== 'text/event-stream') return;
    this.heartbeat = setTimeout(() => {
      if (this.closed.aborted) return;
      const silentFor = performance.now() - this.lastWriteAt;
      if (silentFor < this.options.heartbeatMs) return this.armHeartbeat(this.options.heartbeatMs - silentFor);
      this.lastWriteAt = performance.now();
      this.write(formatWireMessage({ kind: 'comment', text: this.heartbeatText }));
      this.armHeartbeat();
    }, delayMs);
  }

  private stopHeartbeat(): void {
    if (this.heartbeat) clearTimeout(this.heartbeat);
    this.heartbeat = undefined;
  }
}
