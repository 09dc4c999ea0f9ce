import { connect as tlsConnect } from 'node:tls';
import { Agent, type Dispatcher, fetch as undiciFetch } from 'undici';

export interface NodeFetchOptions {
  /**
   * Certificates (PEM) to trust besides the system's, for a server with a self-signed certificate. Node's
   * `NODE_EXTRA_CA_CERTS` works too, without this.
   */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Offer HTTP/2 in the TLS handshake (default true). The server chooses; plain `http://` is always HTTP/1.1. */
  http2?: boolean;
  /** An idle connection is closed after this many ms (default 4000, as Node's own fetch). */
  keepAliveMs?: number;
}

/** A `fetch` for `ClientOptions.fetch`, and the connections behind it. */
export interface NodeFetch {
  fetch: typeof fetch;
  /** Closes every connection, idle or not; requests still running fail. */
  close(): Promise<void>;
}

/** Streams one HTTP/2 connection carries at once before the next request waits for one to end. */
const H2_STREAMS = 100;

/**
 * The SDK's transport in Node: kept-alive HTTP/1.1 connections, and to an HTTPS server that offers HTTP/2
 * (Kindling with `--tls-cert`) one HTTP/2 connection per origin that carries every stream at once. Node's
 * global fetch speaks HTTP/1.1 only, so ten streams to one server open ten sockets there.
 *
 * Two pools, because one cannot serve both: undici counts a connection as full after `pipelining` requests, so
 * HTTP/2 needs a high number, which over HTTP/1.1 would queue a request behind another's whole stream. Which pool
 * an origin gets is settled once, by the ALPN answer of one TLS handshake. Idle sockets do not keep the process
 * alive, so a CLI run exits when its work is done without `close()`.
 */
export function createNodeFetch(options: NodeFetchOptions = {}): NodeFetch {
  const keepAliveTimeout = options.keepAliveMs ?? 4000;
  const connect = options.ca ? { connect: { ca: options.ca } } : {};
  const http1 = new Agent({ keepAliveTimeout, ...connect });
  const http2 = new Agent({ allowH2: true, pipelining: H2_STREAMS, connections: 1, keepAliveTimeout, ...connect });
  // undici keeps a POST alone on its HTTP/2 connection (it could not retry it if the connection failed under
  // others). The SDK never relies on a transport's retry: a cut stream resumes by its genkey and event id.
  const multiplexed = http2.compose(
    (dispatch) => (opts, handler) => dispatch({ ...opts, idempotent: true } as Dispatcher.DispatchOptions, handler),
  );
  const protocols = new Map<string, Promise<'h2' | 'http/1.1' | undefined>>();
  const dispatcherFor = async (url: URL | undefined): Promise<Dispatcher> => {
    if (url?.protocol !== 'https:' || options.http2 === false) return http1;
    let protocol = protocols.get(url.origin);
    if (!protocol) {
      protocol = negotiated(url, options.ca);
      protocols.set(url.origin, protocol);
      // A failed handshake is not remembered: the request reports it, and the next one asks again.
      protocol.then((answer) => answer === undefined && protocols.delete(url.origin));
    }
    return (await protocol) === 'h2' ? multiplexed : http1;
  };
  const nodeFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const dispatcher = await dispatcherFor(urlOf(input));
    // undici's own fetch takes its own `dispatcher`; its Request and Response are the WHATWG classes the global
    // fetch has (Node's fetch is undici), so they pass through the SDK's types unchanged.
    return undiciFetch(input as Parameters<typeof undiciFetch>[0], {
      ...(init as Parameters<typeof undiciFetch>[1]),
      dispatcher,
    }) as unknown as Promise<Response>;
  };
  return {
    fetch: nodeFetch as typeof fetch,
    close: async () => {
      await Promise.all([http1.close(), http2.close()]);
    },
  };
}

/** The protocol the server picks in ALPN; undefined when the handshake fails (the request then says why). */
function negotiated(url: URL, ca: NodeFetchOptions['ca']): Promise<'h2' | 'http/1.1' | undefined> {
  return new Promise((resolve) => {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const socket = tlsConnect({
      host,
      port: Number(url.port || 443),
      ...(/^[\d.]+$|:/.test(host) ? {} : { servername: host }),
      ALPNProtocols: ['h2', 'http/1.1'],
      ...(ca ? { ca } : {}),
      timeout: 10_000,
    });
    const answer = (protocol: 'h2' | 'http/1.1' | undefined) => {
      socket.destroy();
      resolve(protocol);
    };
    socket.once('secureConnect', () => answer(socket.alpnProtocol === 'h2' ? 'h2' : 'http/1.1'));
    socket.once('error', () => answer(undefined));
    socket.once('timeout', () => answer(undefined));
  });
}

function urlOf(input: string | URL | Request): URL | undefined {
  try {
    return new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
  } catch {
    return undefined; // undici reports the bad URL itself
  }
}
