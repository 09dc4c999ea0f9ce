import type { WireMessage } from '../../core/wire-message.ts';

type SseEvent = Extract<WireMessage, { kind: 'event' }>;

/**
 * Ids for the SSE events that one log part turns into (OpenAI's finish chunk + usage chunk + `[DONE]`,
 * Anthropic's `message_start` + `content_block_start` + `ping`). Ids are per log part, so the group shares
 * one; but the group's first event carries the previous part's id (`N - 1`) and the rest `N`. A connection
 * cut right after that first event then resumes with the rest of the group (a reader without a floor sees
 * the first event twice), instead of after the whole group with the usage chunk or `message_delta` lost;
 * a cut later in the group can only lose a terminator (`[DONE]`, `message_stop`), never data.
 */
export function withPartIds(events: ReadonlyArray<Omit<SseEvent, 'id'>>, partId: number): SseEvent[] {
  return events.map((event, index) => ({
    ...event,
    id: String(index === 0 && events.length > 1 ? partId - 1 : partId),
  }));
}
