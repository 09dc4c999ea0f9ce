import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The body as JSON, when it is JSON. */
  body: unknown;
  ms: number;
}

export interface RawRequest {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  /** A string is sent as it is (raw JSON text); anything else as JSON. */
  body?: unknown;
  /** Give up (and close the connection) after this long; the error says what was awaited. */
  timeoutMs?: number;
  /**
   * Keep (and parse) at most this many bytes of the answer: a 40 MB token-id list parsed in the test process
   * would hold the test's own loop, and a probe it times with it.
   */
  keepBytes?: number;
  /** Send from this local address (all of 127/8 is loopback on Linux): a second client, a second principal. */
  localAddress?: string;
}

/**
 * One request on its own connection through node:http (which, unlike fetch, sends any header: `Upgrade`,
 * `Connection`), reading the whole answer, streamed or not, under a deadline that closes the socket.
 */
export function rawRequest(baseUrl: string, options: RawRequest): Promise<RawResponse> {
  const url = new URL(options.path, baseUrl);
  const payload =
    options.body === undefined
      ? undefined
      : typeof options.body === 'string'
        ? options.body
        : JSON.stringify(options.body);
  const timeoutMs = options.timeoutMs ?? 5000;
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, {
      method: options.method ?? (payload === undefined ? 'GET' : 'POST'),
      agent: false,
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
      headers: {
        ...(payload !== undefined
          ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) }
          : {}),
        ...options.headers,
      },
    });
    let status = 0;
    let text = '';
    let truncated = false;
    const timer = setTimeout(() => {
      req.destroy();
      reject(
        new Error(
          `no complete answer to ${req.method} ${options.path} within ${timeoutMs} ms (${status ? `HTTP ${status}, got ${JSON.stringify(text.slice(-300))}` : 'no status line'})`,
        ),
      );
    }, timeoutMs);
    req.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`${req.method} ${options.path} failed: ${error.message}`));
    });
    req.on('response', (res) => {
      status = res.statusCode ?? 0;
      res.setEncoding('utf8');
      const keep = options.keepBytes ?? Number.POSITIVE_INFINITY;
      res.on('data', (chunk: string) => {
        const room = keep - text.length;
        if (chunk.length > room) truncated = true;
        if (room > 0) text += chunk.length > room ? chunk.slice(0, room) : chunk;
      });
      res.on('error', (error) => {
        clearTimeout(timer);
        reject(new Error(`${req.method} ${options.path}: the response broke off: ${error.message}`));
      });
      res.on('close', () => {
        if (res.complete) return;
        clearTimeout(timer);
        reject(
          new Error(
            `${req.method} ${options.path}: the connection closed before the response ended (HTTP ${status}, got ${JSON.stringify(text.slice(-300))})`,
          ),
        );
      });
      res.on('end', () => {
        clearTimeout(timer);
        let body: unknown;
        try {
          if (!truncated) body = JSON.parse(text);
        } catch {}
        resolve({ status, headers: res.headers, text, body, ms: performance.now() - started });
      });
    });
    req.end(payload);
  });
}
