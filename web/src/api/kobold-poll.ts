import type { GenerationResult, TextClient, TextRequest } from '../../../src/client/index.ts';

// Kobold "poll" streaming: a plain (non-streamed) generate request stays open while /api/extra/generate/check
// is polled with the same genkey for the text so far. Slower to update than SSE, but it works through proxies
// and tunnels that buffer event streams.

export const pollIntervalMs = 500;

export function newGenkey(): string {
  return `KCPP${Math.floor(1000 + Math.random() * 9000)}${Date.now().toString(36).slice(-4)}`;
}

export async function pollGenerate(
  client: TextClient,
  request: TextRequest & { genkey: string },
  target: { baseUrl: string; apiKey: string },
  signal: AbortSignal,
  onSnapshot: (text: string) => void,
): Promise<GenerationResult> {
  let settled = false;
  const done = client.generate(request, { signal }).finally(() => {
    settled = true;
  });
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (target.apiKey) headers.authorization = `Bearer ${target.apiKey}`;
  const poll = async () => {
    while (!settled && !signal.aborted) {
      await new Promise((r) => setTimeout(r, pollIntervalMs));
      if (settled || signal.aborted) break;
      try {
        const response = await fetch(`${target.baseUrl}/api/extra/generate/check`, {
          method: 'POST',
          headers,
          cache: 'no-store',
          body: JSON.stringify({ genkey: request.genkey }),
          signal,
        });
        const body = (await response.json()) as { results?: { text?: string }[] };
        const text = body.results?.[0]?.text;
        if (!settled && typeof text === 'string' && text.length > 0) onSnapshot(text);
      } catch {
        // A failed poll only delays the preview; the generate request itself reports real errors.
      }
    }
  };
  void poll();
  return done;
}
