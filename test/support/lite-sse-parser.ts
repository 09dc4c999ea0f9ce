/**
 * KoboldAI Lite's way of reading Kobold SSE (v339): a regex that wants `event: <name>\ndata: <one-line JSON>`
 * followed by a blank line, skipping lines that come before `event:` (our `id:` lines and `: ping` comments).
 * Written from a description of Lite's behaviour, not copied from its source.
 */
export interface LiteEvent {
  event: string;
  data: { token: string; finish_reason: string | null };
}

export function parseLikeLite(stream: string): { events: LiteEvent[]; rest: string } {
  const pattern = /^event: (.*)\ndata: (.*)(\r?\n){2}/m;
  const events: LiteEvent[] = [];
  let rest = stream;
  for (let match = pattern.exec(rest); match; match = pattern.exec(rest)) {
    events.push({ event: match[1] as string, data: JSON.parse(match[2] as string) });
    rest = rest.slice((match.index ?? 0) + match[0].length);
  }
  return { events, rest };
}
