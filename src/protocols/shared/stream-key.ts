/**
 * The client's name for a resumable stream: `X-Kindling-Stream`, else `Idempotency-Key` (the header the
 * OpenAI and Anthropic SDKs already know how to send). It becomes the generation's key; with
 * `Last-Event-ID` a re-sent request reattaches to the running generation instead of starting another.
 */
export function streamKey(headers: Record<string, string | string[] | undefined>): string | undefined {
  for (const name of ['x-kindling-stream', 'idempotency-key']) {
    const raw = headers[name];
    const value = (Array.isArray(raw) ? raw[0] : raw)?.trim();
    if (value) return value;
  }
  return undefined;
}
