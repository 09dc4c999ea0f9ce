import '@fastify/websocket';
import type { FastifyInstance } from 'fastify';
import { Compile } from 'typebox/compile';
import type { WebSocket } from 'ws';
import { KindlingError, toKindlingError } from '../../core/kindling-error.ts';
import { decodeKoboldGenerate } from '../../protocols/kobold/decode.ts';
import { encodeKoboldWs } from '../../protocols/kobold/encode-ws.ts';
import { WsClientMessage } from '../../protocols/kobold/ws-messages.ts';
import { withSchemaGrammar } from '../../protocols/shared/grammar-field.ts';
import type { ServerContext } from '../server-context.ts';
import { submitOrResume } from '../submit-or-resume.ts';

const checkMessage = Compile(WsClientMessage);
/** Above this many unsent bytes a reader waits for the socket before sending more (its text coalesces meanwhile). */
const HIGH_WATER = 256 * 1024;

/** `GET /api/extra/generate/ws`: many concurrent generations over one WebSocket, resumable by event id. */
export function registerKoboldWsRoute(app: FastifyInstance, context: ServerContext): void {
  const { scheduler, config } = context;
  app.get('/api/extra/generate/ws', { websocket: true, schema: { hide: true } }, (socket: WebSocket) => {
    const readers = new Map<string, AbortController>();
    const send = (message: string) => new Promise<void>((resolve) => socket.send(message, () => resolve()));
    const sendError = (id: string | undefined, error: KindlingError) =>
      void send(JSON.stringify({ type: 'error', id, status: error.status, message: error.message }));

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
        const first = [...checkMessage.Errors(message)][0];
        return sendError(
          (message as { id?: string })?.id,
          KindlingError.badInput(
            first?.instancePath || 'message',
            first?.message ?? 'is not a start, abort or ping message',
          ),
        );
      }
      if (message.type === 'ping') return void send(JSON.stringify({ type: 'pong' }));
      if (message.type === 'abort') {
        const aborted = scheduler.abort(message.id);
        return void send(JSON.stringify({ type: 'aborted', id: message.id, success: aborted }));
      }
      const { id } = message;
      if (readers.has(id))
        return sendError(
          id,
          new KindlingError('conflict', `Generation "${id}" is already streaming on this connection.`),
        );
      let target: ReturnType<typeof submitOrResume>;
      try {
        const body = await withSchemaGrammar({ ...message.request, genkey: id }, context.jsonSchemaToGrammar);
        const request = decodeKoboldGenerate(body, { maxLength: config.defaultMaxLength });
        target = submitOrResume(scheduler, request, message.last_event_id);
      } catch (error) {
        return sendError(id, toKindlingError(error));
      }
      const reader = new AbortController();
      readers.set(id, reader);
      void (async () => {
        try {
          for await (const batch of target.generation.log.read(target.afterId, reader.signal)) {
            for (const out of encodeKoboldWs(id, batch)) {
              if (socket.bufferedAmount > HIGH_WATER) await send(out);
              else void send(out);
            }
          }
        } finally {
          readers.delete(id);
        }
      })();
    });
  });
}
