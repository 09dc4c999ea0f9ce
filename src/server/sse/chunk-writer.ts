import type { ServerResponse } from 'node:http';

/** Writes one piece of a streamed body; false when the socket's buffer is full (wait for `drain`). */
export type ChunkWriter = (text: string) => boolean;

/**
 * Per-token writes straight to the socket, framed as HTTP/1.1 chunks by us, where that is safe: the response
 * is chunked (the caller set `transfer-encoding: chunked`) and nothing of it is still queued inside Node's
 * HTTP layer (`writableLength` 0, so these bytes cannot overtake the headers or an earlier write). Anything else
 * goes through `res.write`, which frames the same way. Skipping the HTTP layer saves its cork, the next-tick
 * uncork and a three-part writev for every token: on 2 cores that time is taken from the decoding threads
 * (bench/token-cpu.ts).
 */
export function chunkWriter(res: ServerResponse, chunked: boolean): ChunkWriter {
  const socket = res.socket;
  if (!chunked || !socket) return (text) => res.write(text);
  return (text) => {
    if (res.writableLength > 0 || socket.destroyed) return res.write(text);
    return socket.write(`${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`);
  };
}
