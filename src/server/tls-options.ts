import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { KindlingError } from '../core/kindling-error.ts';

export interface TlsFiles {
  certPath: string;
  keyPath: string;
}

/**
 * Fastify's options for HTTPS with HTTP/2 and HTTP/1.1 on one port (ALPN picks): browsers then carry every SSE
 * stream of a page over one connection, past HTTP/1.1's six connections per origin. A file that cannot be read
 * is a startup error naming it.
 */
export function tlsServerOptions(files: TlsFiles) {
  const read = (path: string, flag: string) => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new KindlingError('bad_input', `${flag} ${path}: ${(error as Error).message}`);
    }
  };
  return {
    http2: true as const,
    https: { allowHTTP1: true, cert: read(files.certPath, '--tls-cert'), key: read(files.keyPath, '--tls-key') },
  };
}

/**
 * Closes every connection a server holds, for shutdown: Node's HTTP/1 server can do it itself; the HTTPS one
 * with HTTP/2 cannot, so its TLS sockets (HTTP/2 sessions and HTTP/1.1 alike) are tracked from the start.
 */
export function connectionCloser(server: Server): () => void {
  if (typeof server.closeAllConnections === 'function') return () => server.closeAllConnections();
  const sockets = new Set<Socket>();
  server.on('secureConnection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return () => {
    for (const socket of sockets) socket.destroy();
  };
}
