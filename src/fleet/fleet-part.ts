import { KindlingError } from '../core/kindling-error.ts';
import type { StreamPart } from '../core/stream-part.ts';

/** Where one generation's parts and record live in Redis; `base` scopes the key to its principal. */
export const fleetKeys = {
  base: (principal: string, key: string) => `${encodeURIComponent(principal)}:${encodeURIComponent(key)}`,
  log: (base: string) => `kindling:gen:${base}:log`,
  record: (base: string) => `kindling:gen:${base}:rec`,
  /** A server id (`kg-…`) finds a generation from any principal, as it does on one node. */
  serverId: (id: string) => `kindling:genid:${id}`,
  abortChannel: 'kindling:abort',
  /** A reader on another node still wants the generation: its owner restarts the resume window (touch). */
  touchChannel: 'kindling:touch',
};

/**
 * A part's Redis stream entry id: `0-<part id>`, so the SSE event id and the stream id are one number and a
 * `Last-Event-ID` maps to an XRANGE/XREAD cursor without a lookup.
 */
export const entryId = (partId: number) => `0-${partId}`;
export const partIdOf = (entry: string) => Number(entry.slice(entry.indexOf('-') + 1));

/** JSON of a part; an error part keeps its code and message (a KindlingError does not survive JSON). */
export function encodePart(part: StreamPart): string {
  if (part.type !== 'error') return JSON.stringify(part);
  return JSON.stringify({ type: 'error', error: { code: part.error.code, message: part.error.message } });
}

export function decodePart(json: string): StreamPart {
  const part = JSON.parse(json) as StreamPart;
  if (part.type !== 'error') return part;
  const { code, message } = part.error as { code: KindlingError['code']; message: string };
  return { type: 'error', error: new KindlingError(code, message) };
}
