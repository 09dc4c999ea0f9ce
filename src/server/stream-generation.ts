import type { FastifyReply } from 'fastify';
import { KindlingError, toKindlingError } from '../core/kindling-error.ts';
import type { WireMessage } from '../core/wire-message.ts';
import type { Generation } from '../scheduler/generation.ts';
import type { LoggedPart } from '../stream/generation-log.ts';
import { errorEnvelope } from './error-envelope.ts';
import type { ServerContext } from './server-context.ts';
import { StreamResponse } from './sse/stream-response.ts';

export interface StreamGenerationOptions {
  /**
   * Resume after this event id (from `Last-Event-ID`); 0 streams from the start. A fractional id (an event
   * inside a part's group, see part-event-ids.ts) replays from its part on, without the events up to it.
   */
  afterId: number;
  encode: (batch: readonly LoggedPart[]) => WireMessage[];
  contentType?: 'text/event-stream' | 'application/x-ndjson';
  /** Messages sent once the generation has ended (e.g. OpenAI's `[DONE]`). */
  trailer?: WireMessage[];
  headers?: Record<string, string>;
}

/**
 * Streams a generation's log to the client from `afterId` on, through a protocol's encoder. Used by
 * every protocol, for new streams and resumed ones alike. A client that leaves aborts the generation
 * only if the request asked for that (anonymous requests); named ones keep running for resume.
 */
export async function streamGeneration(
  context: ServerContext,
  reply: FastifyReply,
  generation: Generation,
  options: StreamGenerationOptions,
): Promise<void> {
  reply.hijack();
  const abandon = () => {
    if (!generation.log.ended && generation.request.abortOnDisconnect) generation.abort('disconnect');
  };
  let response: StreamResponse | undefined;
  try {
    response = new StreamResponse(reply.raw, {
      contentType: options.contentType ?? 'text/event-stream',
      heartbeatMs: context.config.heartbeatMs,
      stalledReaderMs: context.config.stalledReaderMs,
      headers: { 'x-kindling-generation': generation.key, ...corsHeaders(reply), ...options.headers },
    });
    const stream = response;
    stream.closed.addEventListener('abort', abandon);
    const afterPart = Math.floor(options.afterId);
    // Only the part after `afterPart`, which opens the first batch, can have events numbered up to a fractional
    // `afterId`; later batches go out unfiltered (the per-token path stays as it was).
    let floor = options.afterId > afterPart ? options.afterId : undefined;
    for await (const batch of generation.log.read(afterPart, stream.closed)) {
      for (const { part } of batch) {
        if (part.type === 'queued') stream.setHeartbeatText(`ping queued ${part.position}`);
        else if (part.type === 'start') stream.setHeartbeatText('ping');
      }
      let messages = options.encode(batch);
      if (floor !== undefined) {
        messages = messagesAfter(messages, floor);
        floor = undefined;
      }
      await stream.send(messages);
    }
    if (generation.log.ended && options.trailer) await stream.send(options.trailer);
  } catch (error) {
    // The reply is hijacked: Fastify can no longer answer for us, so a throw here must end the response itself
    // (left open, the client waits forever and the server's close waits for it), and a generation nobody can
    // come back for must stop.
    failHijacked(reply, error);
    abandon();
  } finally {
    response?.end();
  }
}

/**
 * Ends a hijacked response after a failure: a 500 in the protocol's envelope while the head is still unsent,
 * else the connection is cut mid-body, which every client reads as a failed response (a clean end would read as
 * a finished stream).
 */
function failHijacked(reply: FastifyReply, raw: unknown): void {
  const res = reply.raw;
  const error = toKindlingError(raw);
  reply.log.error({ err: raw }, 'stream failed');
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  try {
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    const body = JSON.stringify(errorEnvelope(reply.request.url, new KindlingError('internal', error.message)));
    res.writeHead(500, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
      ...corsHeaders(reply),
    });
    res.end(body);
  } catch {
    res.destroy();
  }
}

/** Hijacked replies skip Fastify's onSend hooks, so CORS headers set by the plugin are copied over. */
function corsHeaders(reply: FastifyReply): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(reply.getHeaders())) {
    if (name.startsWith('access-control-') && value !== undefined) out[name] = String(value);
  }
  return out;
}

/** Drops the events numbered up to `floor` (a resumed client saw them); comments and id-less events pass. */
function messagesAfter(messages: WireMessage[], floor: number): WireMessage[] {
  return messages.filter(
    (message) => message.kind !== 'event' || message.id === undefined || Number(message.id) > floor,
  );
}

/**
 * `Last-Event-ID` as a number (`4`, or `4.2` for an event inside a part's group), or undefined when absent
 * or not one of our ids (negative, not a finite number).
 */
export function lastEventId(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value.trim() === '') return undefined;
  const id = Number(value);
  return Number.isFinite(id) && id >= 0 ? id : undefined;
}
