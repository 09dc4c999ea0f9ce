import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';

/**
 * What to do when Node's HTTP parser rejects bytes on a connection (Fastify's `clientErrorHandler`). As Fastify's
 * own handler (a small JSON error, then the socket closes), with two differences:
 * - bytes after a request that said `Connection: close` (a pipelined second request) are dropped: the first
 *   request is answered and the connection then closes, as the client asked. Answering them with a 400 cut the
 *   first response off before it was written.
 * - no error response is written into a response that is still going out on that socket (it would land inside
 *   its body); the socket is only closed.
 */
export function handleClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'HPE_CLOSED_CONNECTION') return;
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, message] =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Client Timeout']
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Exceeded maximum allowed HTTP header size']
        : [400, 'Client Error'];
  const responding = (socket as Socket & { _httpMessage?: unknown })._httpMessage !== undefined;
  if (socket.writable && !responding) {
    const body = JSON.stringify({ error: STATUS_CODES[status], message, statusCode: status });
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}
