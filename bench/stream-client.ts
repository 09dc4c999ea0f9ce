/** Streams one Kobold SSE generation and times it from the client's side. */
export interface StreamTiming {
  firstTokenMs: number;
  totalMs: number;
  /** Decode speed after the first token: (tokens - 1) / (last - first). */
  tokensPerSecond: number;
  tokens: number;
  events: number;
}

export async function timeKoboldStream(baseUrl: string, body: Record<string, unknown>): Promise<StreamTiming> {
  const started = performance.now();
  const response = await fetch(`${baseUrl}/api/extra/generate/stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let first = 0;
  let last = 0;
  let events = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (frame.includes('"finish_reason": null')) {
        const now = performance.now();
        if (!first) first = now;
        last = now;
        events++;
      }
      end = buffer.indexOf('\n\n');
    }
  }
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
