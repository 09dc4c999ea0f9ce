import type { FastifyReply } from 'fastify';
import { KindlingError, toKindlingError } from '../core/kindling-error.ts';
import type { LoggedPart } from '../core/logged-part.ts';
import type { WireMessage } from '../core/wire-message.ts';
import type { Generation } from '../scheduler/generation.ts';
import { errorEnvelope } from './error-envelope.ts';
import { principalOf } from './principal.ts';
import { accessOf, type ServerContext } from './server-context.ts';
import { EventPacer, pause } from './sse/event-pacer.ts';
import { chooseStreamEncoding } from './sse/stream-encoding.ts';
import { StreamResponse } from './sse/stream-response.ts';

export interface StreamGenerationOptions {
  /**
   * Resume after this event id (from `Last-Event-ID`); 0 streams from the start. A fractional id (an event
   * inside a part's group, see part-event-ids.ts) replays from its part on, without the events up to it.
   */
  afterId: number;
  encode: (batch: readonly LoggedPart[]) => WireMessage[];
  contentType?: 'text/event-stream' | 'application/x-ndjson';
  /** The client's pace (`stream_interval_ms`); sse/event-pacer.ts adds the server's own for slow readers. */
  intervalMs?: number | undefined;
}

/**
 * Streams a generation's log to the client from `afterId` on, through a protocol's encoder. Used by
 * every protocol, for new streams and resumed ones alike. The connection is one of the generation's
 * readers: when the last reader leaves, an anonymous generation is aborted and a keyed one keeps running
 * for the resume window (generation.ts).
 */
export async function streamGeneration(
  context: ServerContext,
  reply: FastifyReply,
  generation: Generation,
  options: StreamGenerationOptions,
): Promise<void> {
  reply.hijack();
  // A reader from the start: should the response fail before its first byte, releasing it still lets the
  // resume window (or, for an anonymous request, the abort) end the generation.
  const release = generation.attachReader();
  let response: StreamResponse | undefined;
  try {
    response = new StreamResponse(reply.raw, {
      contentType: options.contentType ?? 'text/event-stream',
      heartbeatMs: context.config.heartbeatMs,
      stalledReaderMs: context.config.stalledReaderMs,
      headers: {
        'x-kindling-generation': generation.id,
        ...corsHeaders(reply),
        ...accessOf(context).rateHeaders(reply.request, principalOf(reply.request)),
      },
      encoding: context.config.compress ? chooseStreamEncoding(reply.request.headers['accept-encoding']) : undefined,
      padBytes: requestedPadding(reply),
    });
    const stream = response;
    stream.closed.addEventListener('abort', release, { once: true });
    const afterId = options.afterId;
    const afterPart = Math.floor(afterId);
    // Only the part after `afterPart`, which opens the first batch, can have events numbered up to a fractional
    // `afterId`; later batches go out unfiltered (the per-token path stays as it was).
    let floor = afterId > afterPart ? afterId : undefined;
    const pacer = new EventPacer(options.intervalMs ?? 0);
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
      const waited = await stream.send(messages);
      const final = batch[batch.length - 1]?.part.type;
      if (final === 'finish' || final === 'error') {
        if (!stream.closed.aborted) generation.endDelivered = true;
        continue;
      }
      pacer.sent(stream.multiplexed ? await stream.multiplexedBacklogBytes() : stream.backlogBytes, waited);
      const wait = pacer.delay();
      if (wait > 0) await pause(wait, stream.closed);
    }
  } catch (error) {
    // The reply is hijacked: Fastify can no longer answer for us, so a throw here must end the response itself
    // (left open, the client waits forever and the server's close waits for it); releasing the reader stops a
    // generation nobody can come back for (at once when anonymous, after the resume window when keyed).
    failHijacked(reply, error);
  } finally {
    response?.end();
    release();
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
    const body = JSON.stringify(errorEnvelope(reply.request, new KindlingError('internal', error.message)));
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

/** Bytes of padding a client asks for with `?pad=N` or `X-Kindling-Pad: N` (N KiB, 1–64; `1` or `true`: 16 KiB). */
function requestedPadding(reply: FastifyReply): number | undefined {
  const query = (reply.request.query as { pad?: unknown } | undefined)?.pad;
  const raw = typeof query === 'string' ? query : reply.request.headers['x-kindling-pad'];
  const value = (Array.isArray(raw) ? raw[0] : raw)?.trim().toLowerCase();
  if (!value || value === '0' || value === 'false') return undefined;
  if (value === '1' || value === 'true') return 16 * 1024;
  const kib = Number(value);
  return Number.isInteger(kib) && kib > 0 ? Math.min(kib, 64) * 1024 : undefined;
}

/**
 * `Last-Event-ID` as a number (`4`, or `4.2` for an event inside a part's group), or undefined when absent
 * or not one of our ids. Our ids are plain decimals, so anything else (`0x10`, `1e300`, `-1`, `Infinity`, which
 * `Number()` would read as numbers) is treated as absent, as the header of a client that saw no event.
 */
export function lastEventId(header: string | string[] | undefined): number | undefined {
  const value = (Array.isArray(header) ? header[0] : header)?.trim();
  if (value === undefined || value.length > 40 || !/^\d+(\.\d+)?$/.test(value)) return undefined;
  return Number(value);
}
