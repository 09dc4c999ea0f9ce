import { type Static, Type } from 'typebox';
import { KoboldGenerateBody } from './wire.ts';

/**
 * The WebSocket bridge (`GET /api/extra/generate/ws`): one connection carries many generations, each
 * named by its genkey (`id`). Client messages:
 * - `{"type":"start","id":K,"request":{…Kobold generate body…},"last_event_id"?:N}`: starts generation K,
 *   or, with `last_event_id`, resumes it after that event (replay, then live).
 * - `{"type":"abort","id":K}`; `{"type":"ping"}` (answered by `{"type":"pong"}`).
 * Server messages: `queued`, `token` (`event_id`, `text`), `end` (`finish_reason`, `stop_reason`, `usage`),
 * `error` (`status`, `message`, and `retry_after` in seconds on a 429 or 503), `aborted`, `pong`.
 */
export const WsClientMessage = Type.Union([
  Type.Object({
    type: Type.Literal('start'),
    id: Type.String({ minLength: 1 }),
    request: KoboldGenerateBody,
    last_event_id: Type.Optional(Type.Integer({ minimum: 0 })),
  }),
  Type.Object({ type: Type.Literal('abort'), id: Type.String({ minLength: 1 }) }),
  Type.Object({ type: Type.Literal('ping') }),
]);
export type WsClientMessage = Static<typeof WsClientMessage>;

/** A request on the socket failed (`id` when the message named one). */
export function wsErrorMessage(
  id: string | undefined,
  status: number,
  message: string,
  retryAfterSeconds?: number,
): string {
  const retry = retryAfterSeconds !== undefined ? { retry_after: retryAfterSeconds } : {};
  return JSON.stringify({ type: 'error', id, status, message, ...retry });
}

export function wsAbortedMessage(id: string, success: boolean): string {
  return JSON.stringify({ type: 'aborted', id, success });
}

export const WS_PONG = JSON.stringify({ type: 'pong' });
