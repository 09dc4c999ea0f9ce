import type { LoggedPart } from '../../core/logged-part.ts';
import type { WireMessage } from '../../core/wire-message.ts';
import { withPartIds } from '../common/part-event-ids.ts';
import { koboldErrorBody } from './errors.ts';
import { koboldFinishReason } from './finish-reason.ts';
import { pythonJson, pythonJsonString } from './python-json.ts';

/**
 * Kobold SSE, readable by KoboldAI Lite's regex parser: `id:` first (Lite skips lines before `event:`),
 * then `event: message`, then exactly one `data:` line. Text parts that accumulated while the reader
 * was busy are joined into one event (its id is the last part's), so a slow reader gets fewer, larger
 * events instead of an unbounded backlog. The final event carries only the finish reason, with JSON
 * `null` before it (KoboldCpp ≥1.86 framing). An error is an `error` event and that final event, with ids
 * from part-event-ids.ts.
 */
export function encodeKoboldStream(batch: readonly LoggedPart[]): WireMessage[] {
  const out: WireMessage[] = [];
  let text = '';
  let lastTextId = 0;
  for (const { id, part } of batch) {
    switch (part.type) {
      case 'text-delta':
        text += part.text;
        lastTextId = id;
        break;
      case 'queued':
        text = flushText(out, text, lastTextId);
        out.push({ kind: 'comment', text: `queued ${part.position}` });
        break;
      case 'start':
        break;
      case 'finish':
        text = flushText(out, text, lastTextId);
        out.push({
          kind: 'event',
          id: String(id),
          event: 'message',
          data: pythonJson({ token: '', finish_reason: koboldFinishReason(part.reason) }),
        });
        break;
      case 'error':
        text = flushText(out, text, lastTextId);
        out.push(
          ...withPartIds(
            [
              { kind: 'event', event: 'error', data: JSON.stringify(koboldErrorBody(part.error)) },
              { kind: 'event', event: 'message', data: pythonJson({ token: '', finish_reason: 'error' }) },
            ],
            id,
          ),
        );
        break;
    }
  }
  flushText(out, text, lastTextId);
  return out;
}

/** Emits the text gathered so far as one token event (if any) and returns the empty text to gather into next. */
function flushText(out: WireMessage[], text: string, id: number): string {
  if (text)
    out.push({
      kind: 'event',
      id: String(id),
      event: 'message',
      // Written out rather than through pythonJson's object walk: this runs for every token.
      data: `{"token": ${pythonJsonString(text)}, "finish_reason": null}`,
    });
  return '';
}
