import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { seededRandom } from './fake-providers/seeded-tokens.ts';

export interface FaultProxyOptions {
  /** Where to forward: `http://127.0.0.1:5001` or any `host:port`. */
  target: string;
  /** Seed for where cuts land; the same seed cuts the same byte offsets. Default 1. */
  seed?: number;
  /** Each connection's server→client bytes are cut at an offset drawn from [minBytes, maxBytes]. */
  minBytes?: number;
  maxBytes?: number;
  /** Chance that a connection is cut at all. Default 1. */
  cutProbability?: number;
  /** `reset` sends RST, `close` sends FIN, `mixed` picks one per cut. Default `mixed`. */
  mode?: 'reset' | 'close' | 'mixed';
  /** Stop cutting after this many cuts (connections that reach their offset later pass untouched). */
  maxCuts?: number;
}

export interface FaultProxy {
  url: string;
  port: number;
  /** Connections cut so far. */
  readonly cuts: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Turn cutting off (or back on) without restarting the proxy. */
  setCutting(enabled: boolean): void;
  close(): Promise<void>;
}

/**
 * A TCP proxy on 127.0.0.1 that forwards bytes unchanged and cuts connections at seeded random byte offsets
 * of the response. It knows nothing about HTTP or SSE, so it works in front of any server (the fakes in
 * tests, or the real Kindling server).
 */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(options.target.includes('://') ? options.target : `tcp://${options.target}`);
  const targetPort = Number(target.port);
  const random = seededRandom(options.seed ?? 1);
  const minBytes = options.minBytes ?? 1;
  const maxBytes = Math.max(minBytes, options.maxBytes ?? 4096);
  let cutting = true;
  let cuts = 0;
  let connections = 0;
  const open = new Set<Socket>();

  const server = createServer((client) => {
    connections += 1;
    // Draw every number up front, in accept order, so a run's cuts depend only on the seed.
    const willCut = cutting && random() < (options.cutProbability ?? 1);
    let remaining = Math.floor(minBytes + random() * (maxBytes - minBytes + 1));
    const reset = options.mode === 'reset' || (options.mode !== 'close' && random() < 0.5);
    const upstream = connect(targetPort, target.hostname);
    open.add(client);
    open.add(upstream);
    client.on('close', () => open.delete(client));
    upstream.on('close', () => open.delete(upstream));
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('data', (chunk) => upstream.write(chunk));
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    upstream.on('data', (chunk: Buffer) => {
      const exhausted = options.maxCuts !== undefined && cuts >= options.maxCuts;
      if (!willCut || exhausted || remaining > chunk.length) {
        remaining -= chunk.length;
        client.write(chunk);
        return;
      }
      cuts += 1;
      upstream.removeAllListeners('data');
      upstream.destroy();
      client.write(chunk.subarray(0, remaining), () => {
        if (reset) client.resetAndDestroy();
        else client.destroy();
      });
      remaining = 0;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get cuts() {
      return cuts;
    },
    get connections() {
      return connections;
    },
    setCutting(enabled: boolean) {
      cutting = enabled;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of open) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
