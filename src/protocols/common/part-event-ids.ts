import type { WireMessage } from '../../core/wire-message.ts';

type SseEvent = Extract<WireMessage, { kind: 'event' }>;

/**
 * Ids for the SSE events that one log part turns into (OpenAI's finish chunk + usage chunk + `[DONE]`,
 * Anthropic's `message_start` + `content_block_start` + `ping`). Every event gets an id of its own, so a
 * connection cut anywhere inside the group resumes with exactly the events after the last one the client
 * saw, none of them twice. For part `N` made of `m > 1` events, event `i < m - 1` gets `N-1.(i+1)` and the
 * last one `N`: after part 4's event `4`, part 5's three events are `4.1`, `4.2`, `5`. Read as numbers the
 * ids increase strictly, and the last event of every part carries the part's integer id; a single-event
 * part keeps `N`. `Last-Event-ID: X` replays the parts after `floor(X)` and drops their events numbered
 * `<= X` (stream-generation.ts). A group has at most 10 events, so that no `.10` sorts before a `.9`.
 */
export function withPartIds(events: ReadonlyArray<Omit<SseEvent, 'id'>>, partId: number): SseEvent[] {
  const last = events.length - 1;
  if (last > 9) throw new RangeError(`a log part became ${events.length} events; part ids allow at most 10`);
  return events.map((event, index) => ({
    ...event,
    id: index === last ? String(partId) : `${partId - 1}.${index + 1}`,
  }));
}
