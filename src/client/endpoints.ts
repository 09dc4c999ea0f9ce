import { ConnectionRefusedError, HttpStatusError, type KindlingClientError, NetworkError } from './client-errors.ts';
import { type HttpRequest, requestJson, toClientError } from './http-request.ts';
import { backoffDelay, type RetryPolicy } from './retry-policy.ts';

/**
 * The base URLs one client may use (several nodes of a fleet), and which of them is in use now. Every client of
 * one `createClient` shares it, so a node that failed for one stream is skipped by the next. The order is
 * round-robin: after the last URL comes the first again, so a node that failed is tried again later.
 */
export class Endpoints {
  readonly urls: readonly string[];
  #index = 0;

  constructor(urls: readonly string[]) {
    if (urls.length === 0) throw new TypeError('at least one base URL is needed');
    this.urls = urls;
  }

  get current(): string {
    return this.urls[this.#index] as string;
  }

  get size(): number {
    return this.urls.length;
  }

  /**
   * `url` failed: move on to the next URL. Only when `url` is still the current one, so streams that failed
   * on the same node together move on once, not once each (which would skip a healthy node).
   */
  failed(url: string): void {
    if (this.urls.length > 1 && this.current === url) this.#index = (this.#index + 1) % this.urls.length;
  }
}

/**
 * Errors after which another node may succeed: the connection failed or was cut (refused, reset, DNS, a body
 * cut short, silence past the heartbeat), or the node answered 503. Our 503s are `unavailable` (it lost Redis),
 * `shutting_down` and `queue_full`, all about this node, and the Kobold and Anthropic envelopes do not tell
 * them apart; a 503 was already retried, so trying it on the next node costs nothing more. Any other HTTP answer
 * is the server's verdict on the request and would be the same on every node, so it does not move the client.
 */
export function isFailoverError(error: KindlingClientError): boolean {
  return error instanceof NetworkError || (error instanceof HttpStatusError && error.status === 503);
}

/**
 * The delay before failover attempt `failures` (1-based, counted since the last progress) with `hops` other
 * URLs to try: the first hop to each other node is immediate (a delay hint was the failed node's), and once
 * every node has failed in a row the backoff is the one a single URL gets.
 */
export function failoverDelay(failures: number, hops: number, policy: RetryPolicy, serverHintMs?: number): number {
  return failures <= hops ? 0 : backoffDelay(failures - hops, policy, serverHintMs);
}

/** One refusal for all the URLs that refused, so the message names every node that was tried. */
export function refusedByAll(errors: readonly ConnectionRefusedError[]): ConnectionRefusedError {
  const first = errors[0] as ConnectionRefusedError;
  if (errors.length === 1) return first;
  const origins = [...new Set(errors.map((e) => e.origin))];
  return new ConnectionRefusedError(origins.join(', '), first.cause, origins);
}

/**
 * A JSON request (info routes, model lists, token counts, `/abort`) tried once on each URL, starting at the
 * current one, until one answers. `build` reads the current base URL, so it is called again for each URL.
 * No backoff: each URL is tried once, as a single-URL client tries its one URL once.
 */
export async function requestJsonWithFailover(
  fetchFn: typeof fetch,
  endpoints: Endpoints,
  build: () => HttpRequest,
  signal: AbortSignal,
): Promise<unknown> {
  const refused: ConnectionRefusedError[] = [];
  for (let tried = 1; ; tried++) {
    const url = endpoints.current;
    try {
      return await requestJson(fetchFn, build(), signal);
    } catch (caught) {
      const error = toClientError(caught, signal);
      if (error instanceof ConnectionRefusedError) refused.push(error);
      if (!isFailoverError(error) || signal.aborted) throw error;
      endpoints.failed(url);
      if (tried >= endpoints.size) throw refused.length === tried ? refusedByAll(refused) : error;
    }
  }
}
