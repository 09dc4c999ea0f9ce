import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { KindlingError } from '../core/kindling-error.ts';
import type { Engine } from '../engine/engine.ts';
import { type TokenizeOptions, tokenizeSliced } from '../engine/token-cuts.ts';
import { onClientGone } from './client-gone.ts';

/**
 * The tokens of a request's text without holding the event loop: slice by slice (engine/token-cuts.ts), and
 * stopped when the client leaves, so a disconnected 31 MB count does not run on for seconds.
 */
export async function tokenizeForReply(
  engine: Engine,
  reply: FastifyReply,
  text: string,
  options: TokenizeOptions,
): Promise<number[]> {
  const controller = new AbortController();
  const stop = onClientGone(reply, () => controller.abort());
  try {
    return (await tokenizeSliced(engine, text, options, controller.signal)).tokens;
  } catch (error) {
    if (controller.signal.aborted) throw new KindlingError('bad_input', 'The client closed the request.');
    throw error;
  } finally {
    stop();
  }
}

/** Ids per piece of a streamed id list: each join takes well under a millisecond. */
const IDS_PER_CHUNK = 16_384;

/**
 * `{ ...fields, ids: [...] }` as JSON. A long id list (millions of numbers for a 31 MB text) is written in
 * pieces as the socket takes them, instead of one `JSON.stringify` that holds the loop for 100 ms or more.
 */
export function sendWithIds(reply: FastifyReply, fields: Record<string, unknown>, ids: readonly number[]): unknown {
  if (ids.length <= IDS_PER_CHUNK) return { ...fields, ids };
  const head = JSON.stringify(fields).slice(0, -1);
  function* pieces(): Generator<string> {
    yield `${head}${head.length > 1 ? ',' : ''}"ids":[`;
    for (let i = 0; i < ids.length; i += IDS_PER_CHUNK)
      yield `${i > 0 ? ',' : ''}${ids.slice(i, i + IDS_PER_CHUNK).join(',')}`;
    yield ']}';
  }
  return reply.type('application/json; charset=utf-8').send(Readable.from(pieces(), { objectMode: false }));
}
