import type { ServerResponse } from 'node:http';
import { constants, createBrotliCompress, createDeflate, createGzip } from 'node:zlib';

export type StreamEncoding = 'gzip' | 'br' | 'deflate';

/**
 * The content encoding for a streamed body, from the client's `Accept-Encoding` (q-values honoured, `q=0`
 * refused), or undefined for plain bytes. gzip wins a tie, then br, then deflate (zlib without gzip's header,
 * for the clients that offer only it): with a flush after every batch gzip's per-flush cost is the lowest, and a
 * token's CPU matters more than its bytes. (Node 20 has no zstd.)
 */
export function chooseStreamEncoding(header: string | string[] | undefined): StreamEncoding | undefined {
  const value = Array.isArray(header) ? header.join(',') : header;
  if (!value) return undefined;
  const q = new Map<string, number>();
  for (const item of value.split(',')) {
    const [name = '', ...params] = item.trim().toLowerCase().split(';');
    const weight = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const parsed = weight ? Number(weight.slice(2)) : 1;
    q.set(name.trim(), Number.isFinite(parsed) ? parsed : 0);
  }
  const weightOf = (name: StreamEncoding) => q.get(name) ?? q.get('*') ?? 0;
  const ranked = (['gzip', 'br', 'deflate'] as const)
    .map((name) => ({ name, weight: weightOf(name) }))
    .filter(({ weight }) => weight > 0);
  let best = ranked[0];
  for (const candidate of ranked) if (best && candidate.weight > best.weight) best = candidate;
  return best?.name;
}

/**
 * Compression state per stream stays small, because a server holds many streams: gzip with a 4 KB window and
 * memLevel 5 (about 32 KB a stream, against ~260 KB at zlib's defaults), Brotli at quality 4 with a 64 KB
 * window. SSE events repeat their framing (`id:`, `event: message`, the JSON keys) within a few hundred bytes,
 * so the small window loses little.
 */
export function streamCompressor(encoding: StreamEncoding) {
  // Every write is compressed and flushed in one job of zlib's thread pool (the `flush` option), instead of a
  // write and a flush, two jobs: 40-50 µs of CPU an event instead of 75-85 (bench/compress-cost.ts).
  const flush = constants.Z_SYNC_FLUSH;
  if (encoding === 'gzip') return createGzip({ level: 6, windowBits: 12, memLevel: 5, flush });
  if (encoding === 'deflate') return createDeflate({ level: 6, windowBits: 12, memLevel: 5, flush });
  return createBrotliCompress({
    flush: constants.BROTLI_OPERATION_FLUSH,
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 4,
      [constants.BROTLI_PARAM_LGWIN]: 16,
      [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
    },
  });
}

export interface CompressedBody {
  /** Compresses and flushes at once (a sync flush: the bytes leave now); false when the reader is behind. */
  write(text: string): boolean;
  /** Emits `drain` when a `false` write's bytes have been taken. */
  readonly drainSource: NodeJS.EventEmitter;
  /** Ends the compressed stream, and with it the response. */
  end(): void;
}

/** The response's body through a compressor that flushes after every write, so compression adds no latency. */
export function compressedBody(res: ServerResponse, encoding: StreamEncoding): CompressedBody {
  const stream = streamCompressor(encoding);
  stream.pipe(res);
  // A client that leaves mid-stream: the compressor is dropped with its buffers.
  res.once('close', () => stream.destroy());
  return {
    write(text) {
      if (stream.destroyed) return true;
      return stream.write(text);
    },
    drainSource: stream,
    end() {
      if (!stream.destroyed) stream.end();
    },
  };
}
