import '@fastify/websocket';
import type { FastifyInstance } from 'fastify';
import { Compile } from 'typebox/compile';
import type { WebSocket } from 'ws';
import { KindlingError, toKindlingError } from '../../core/kindling-error.ts';
import type { ProtocolServices } from '../../core/protocol-services.ts';
import { FleetLog } from '../../fleet/fleet-log.ts';
import { STREAM_INTERVAL_MAX_MS } from '../../protocols/common/stream-interval.ts';
import { clientKey, STREAM_KEY_MAX_LENGTH } from '../../protocols/common/stream-key.ts';
import { encodeKoboldWs } from '../../protocols/kobold/encode-ws.ts';
import { decodeKoboldBody, KOBOLD_PROTOCOL } from '../../protocols/kobold/generate-routes.ts';
import { WS_PONG, WsClientMessage, wsAbortedMessage, wsErrorMessage } from '../../protocols/kobold/ws-messages.ts';
import { principalOf } from '../principal.ts';
import { accessOf, type ServerContext } from '../server-context.ts';
import { pause } from '../sse/event-pacer.ts';
import { type StreamTarget, submitOrResume } from '../submit-or-resume.ts';
import { describeValidation } from '../validation-message.ts';

const checkMessage = Compile(WsClientMessage);
/** Above this many unsent bytes a reader waits for the socket before sending more (its text coalesces meanwhile). */
const HIGH_WATER = 256 * 1024;

/** `GET /api/extra/generate/ws`: many concurrent generations over one WebSocket, resumable by event id. */
export function registerKoboldWsRoute(app: FastifyInstance, context: ServerContext, services: ProtocolServices): void {
  const { scheduler, config } = context;
  const fleet = FleetLog.of(context.redis);
  app.get(
    '/api/extra/generate/ws',
    // Browsers cannot set headers on a WebSocket, so this handshake (and nothing else) takes `?apikey=`.
    { websocket: true, schema: { hide: true }, config: { queryApiKey: true } },
    (socket: WebSocket, request) => {
      const origin = { principal: principalOf(request), protocol: KOBOLD_PROTOCOL };
      const access = accessOf(context);
      const handshake = request;
      // `?stream_interval_ms=N`: the connection's pace, at most one message per generation every N ms (as the
      // HTTP streams' `stream_interval_ms`); anything but a whole number in range is ignored.
      const paceMs = wsPace((request.query as { stream_interval_ms?: unknown } | undefined)?.stream_interval_ms);
      const readers = new Map<string, AbortController>();
      const send = (message: string) => new Promise<void>((resolve) => socket.send(message, () => resolve()));
      // A 429 or 503 says when to retry, as its HTTP twin's Retry-After header does.
      const sendError = (id: string | undefined, error: KindlingError) =>
        void send(wsErrorMessage(id, error.status, error.message, error.details.retryAfterSeconds));

      const heartbeat = setInterval(() => socket.ping(), Math.max(1000, config.heartbeatMs));
      heartbeat.unref();
      socket.on('close', () => {
        clearInterval(heartbeat);
        for (const reader of readers.values()) reader.abort();
      });

      socket.on('message', async (data) => {
        let message: unknown;
        try {
          message = JSON.parse(String(data));
        } catch {
          return sendError(undefined, new KindlingError('bad_input', 'Messages must be JSON.'));
        }
        if (!checkMessage.Check(message)) {
          const errors = [...checkMessage.Errors(message)];
          const { field, message: problem } = describeValidation(errors);
          return sendError(
            (message as { id?: string })?.id,
            errors.length > 0 && field !== 'body'
              ? KindlingError.badInput(field, problem)
              : KindlingError.badInput('message', 'is not a start, abort or ping message'),
          );
        }
        if (message.type === 'ping') return void send(WS_PONG);
        let id: string;
        try {
          // The id is a genkey: the same rule as on the HTTP routes.
          const key = clientKey('id', message.id);
          if (key === undefined) throw KindlingError.badInput('id', 'must not be empty');
          id = key;
        } catch (error) {
          // Echoed (JSON-escaped, cut to the longest legal key) so the client can tell which request failed.
          return sendError(message.id.slice(0, STREAM_KEY_MAX_LENGTH), toKindlingError(error));
        }
        if (message.type === 'abort') {
          let aborted: boolean;
          try {
            // In a fleet the generation may run on another node: its owner is told to stop it.
            const { generations } = services;
            aborted = generations.abortAnywhere
              ? await generations.abortAnywhere(origin.principal, id)
              : generations.abort(origin.principal, id);
          } catch (error) {
            return sendError(id, toKindlingError(error));
          }
          return void send(wsAbortedMessage(id, aborted));
        }
        if (readers.has(id))
          return sendError(
            id,
            new KindlingError('conflict', `Generation "${id}" is already streaming on this connection.`),
          );
        // Registered before the request is prepared (a schema converted, a long prompt tokenized): a second start
        // with this id meanwhile is refused, and a socket that closes meanwhile aborts it.
        const reader = new AbortController();
        readers.set(id, reader);
        let target: StreamTarget;
        try {
          const request = await decodeKoboldBody(services, { ...message.request, genkey: id });
          // Each start is its own submission: its own reservation of the key's quota.
          const qos = access.qosOf(handshake, origin.principal);
          target = await submitOrResume(scheduler, request, message.last_event_id, { ...origin, qos }, fleet);
          if (!target.resumed) fleet?.publish(target.generation);
        } catch (error) {
          readers.delete(id);
          return sendError(id, toKindlingError(error));
        }
        const release = target.generation.attachReader();
        if (reader.signal.aborted) {
          // The socket closed while the request was prepared: nobody reads this generation.
          readers.delete(id);
          return release();
        }
        void (async () => {
          try {
            for await (const batch of target.generation.log.read(target.afterId, reader.signal)) {
              for (const out of encodeKoboldWs(id, batch)) {
                if (socket.bufferedAmount > HIGH_WATER) await send(out);
                else void send(out);
              }
              const final = batch[batch.length - 1]?.part.type;
              if ((final === 'finish' || final === 'error') && socket.readyState === socket.OPEN)
                target.generation.endDelivered = true;
              else if (paceMs > 0) await pause(paceMs, reader.signal);
            }
          } finally {
            readers.delete(id);
            release();
          }
        })();
      });
    },
  );
}

function wsPace(raw: unknown): number {
  const value = typeof raw === 'string' && /^\d{1,5}$/.test(raw) ? Number(raw) : 0;
  return value <= STREAM_INTERVAL_MAX_MS ? value : 0;
}
