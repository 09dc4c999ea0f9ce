/**
 * Streams one Kobold SSE generation and times it from the client's side.
 *
 * The client is node:http with a plain substring count, not fetch + a stream reader: on a 2-core machine the
 * client shares the cores with the decoding threads, and a heavier client would measure itself, not the server.
 */
import { request } from 'node:http';

export interface StreamTiming {
  firstTokenMs: number;
  totalMs: number;
  /** Decode speed after the first token: (tokens - 1) / (last - first). */
  tokensPerSecond: number;
  tokens: number;
  events: number;
}

const TOKEN_EVENT = '"finish_reason": null';

export async function timeKoboldStream(baseUrl: string, body: Record<string, unknown>): Promise<StreamTiming> {
  const started = performance.now();
  let first = 0;
  let last = 0;
  let events = 0;
  await new Promise<void>((resolve, reject) => {
    const req = request(
      `${baseUrl}/api/extra/generate/stream`,
      { method: 'POST', headers: { 'content-type': 'application/json' } },
      (res) => {
        res.setEncoding('utf8');
        // An event's marker can be split across chunks: keep the tail that may hold its start.
        let carry = '';
        res.on('data', (chunk: string) => {
          const text = carry + chunk;
          let found = 0;
          for (let at = text.indexOf(TOKEN_EVENT); at >= 0; at = text.indexOf(TOKEN_EVENT, at + TOKEN_EVENT.length))
            found++;
          carry = text.slice(Math.max(0, text.length - TOKEN_EVENT.length + 1));
          if (found > 0) {
            const now = performance.now();
            if (!first) first = now;
            last = now;
            events += found;
          }
        });
        res.on('end', resolve);
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
  const perf = (await (await fetch(`${baseUrl}/api/extra/perf`)).json()) as { last_token_count: number };
  const tokens = perf.last_token_count;
  return {
    firstTokenMs: first - started,
    totalMs: performance.now() - started,
    tokensPerSecond: last > first ? ((tokens - 1) * 1000) / (last - first) : 0,
    tokens,
    events,
  };
}
