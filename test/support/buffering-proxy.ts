import { createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface BufferingProxy {
  url: string;
  /** Responses whose bytes were held back at least once (flushed later than they arrived). */
  readonly held: number;
  close(): Promise<void>;
}

/**
 * An HTTP proxy that holds every response, its head included, until the response has ended or `flushBytes` of
 * its body have piled up, then passes on what it holds (the way tunnels and buffering reverse proxies treat
 * event streams). Requests pass straight through; a client that leaves closes the upstream request, as nginx does.
 */
export async function startBufferingProxy(options: { target: string; flushBytes?: number }): Promise<BufferingProxy> {
  const target = new URL(options.target);
  const flushBytes = options.flushBytes ?? 16 * 1024;
  let held = 0;
  const sockets = new Set<Socket>();

  const server = createServer((incoming: IncomingMessage, outgoing: ServerResponse) => {
    const upstream = request(
      {
        host: target.hostname,
        port: target.port,
        method: incoming.method,
        path: incoming.url,
        headers: { ...incoming.headers, host: target.host },
      },
      (answer) => {
        let chunks: Buffer[] = [];
        let size = 0;
        let headSent = false;
        let heldOnce = false;
        const flush = () => {
          if (!headSent) {
            outgoing.writeHead(answer.statusCode ?? 502, answer.statusMessage, answer.headers);
            headSent = true;
          }
          for (const chunk of chunks) outgoing.write(chunk);
          chunks = [];
          size = 0;
        };
        answer.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          size += chunk.length;
          if (size >= flushBytes) flush();
          else if (!heldOnce) {
            heldOnce = true;
            held += 1;
          }
        });
        answer.on('end', () => {
          flush();
          outgoing.end();
        });
        answer.on('error', () => outgoing.destroy());
      },
    );
    upstream.on('error', () => outgoing.destroy());
    outgoing.on('close', () => upstream.destroy());
    incoming.pipe(upstream);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get held() {
      return held;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
