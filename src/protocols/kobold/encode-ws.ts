import type { LoggedPart } from '../../core/logged-part.ts';
import { koboldFinishReason } from './finish-reason.ts';

/**
 * Log parts → WebSocket messages for one multiplexed generation. Text that accumulated while the socket
 * was busy is joined into one `token` message carrying the last part's event id (the resume point).
 */
export function encodeKoboldWs(id: string, batch: readonly LoggedPart[]): string[] {
  const out: string[] = [];
  let text = '';
  let lastTextId = 0;
  const flush = () => {
    if (text) out.push(JSON.stringify({ type: 'token', id, event_id: lastTextId, text }));
    text = '';
  };
  for (const { id: eventId, part } of batch) {
    switch (part.type) {
      case 'text-delta':
        text += part.text;
        lastTextId = eventId;
        break;
      case 'queued':
        flush();
        out.push(JSON.stringify({ type: 'queued', id, event_id: eventId, position: part.position }));
        break;
      case 'start':
        break;
      case 'finish':
        flush();
        out.push(
          JSON.stringify({
            type: 'end',
            id,
            event_id: eventId,
            finish_reason: koboldFinishReason(part.reason),
            stop_reason: part.reason,
            usage: { prompt_tokens: part.usage.promptTokens, completion_tokens: part.usage.completionTokens },
          }),
        );
        break;
      case 'error':
        flush();
        out.push(
          JSON.stringify({
            type: 'error',
            id,
            event_id: eventId,
            status: part.error.status,
            message: part.error.message,
          }),
        );
        break;
    }
  }
  flush();
  return out;
}
