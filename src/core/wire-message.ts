/**
 * What a protocol's stream encoder hands the HTTP layer: SSE events, SSE comments, or NDJSON lines.
 * Protocols decide the content; `server/sse` owns the bytes and the framing rules.
 */
export type WireMessage =
  | { kind: 'event'; id?: string; event?: string; data: string }
  | { kind: 'comment'; text: string }
  | { kind: 'line'; json: string };
