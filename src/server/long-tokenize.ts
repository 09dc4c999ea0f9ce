import { Readable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { FastifyReply } from 'fastify';
import { KindlingError } from '../core/kindling-error.ts';
import type { Engine } from '../engine/engine.ts';
import { type SlicedTokens, type TokenizeOptions, tokenizeSliced } from '../engine/token-cuts.ts';
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
): Promise<SlicedTokens> {
  const controller = new AbortController();
  const stop = onClientGone(reply, () => controller.abort());
  try {
    return await tokenizeSliced(engine, text, options, controller.signal);
  } catch (error) {
    if (controller.signal.aborted) throw new KindlingError('bad_input', 'The client closed the request.');
    throw error;
  } finally {
    stop();
  }
}

/** Up to this many ids go out as one plain JSON object; more are written in pieces. */
const IDS_IN_ONE_PIECE = 16_384;

/** Pieces written between two yields to the event loop (~100 KB of JSON). */
const PIECES_PER_TURN = 8;

/**
 * `{ ...fields, ids: [...] }` as JSON. A long id list (millions of numbers for a 31 MB text) is written one
 * slice's ids at a time, instead of one `JSON.stringify` that held the loop for 100 ms or more. The pieces
 * wait for the next turn of the loop every few: a loopback socket takes megabytes without back-pressure, and a
 * stream fed by a plain generator would then be drained in one go.
 */
export function sendWithIds(reply: FastifyReply, fields: Record<string, unknown>, ids: SlicedTokens): unknown {
  if (ids.count <= IDS_IN_ONE_PIECE) return { ...fields, ids: ids.chunks.flat() };
  const head = JSON.stringify(fields).slice(0, -1);
  async function* pieces(): AsyncGenerator<string> {
    yield `${head}${head.length > 1 ? ',' : ''}"ids":[`;
    let written = 0;
    for (const chunk of ids.chunks) {
      if (chunk.length === 0) continue;
      if (written > 0 && written % PIECES_PER_TURN === 0) await nextTurn();
      yield `${written > 0 ? ',' : ''}${chunk.join(',')}`;
      written++;
    }
    yield ']}';
  }
  return reply.type('application/json; charset=utf-8').send(Readable.from(pieces(), { objectMode: false }));
}

/**
 * The text of a prompt given as token ids, for generation: only the ids that can still fit the context are
 * detokenized (twice the context, since the text is tokenized again and may come out in fewer tokens), with the
 * ids before them as context so the first character and its leading space come out right. A body of millions of
 * ids then costs what its last few thousand cost.
 */
export function promptTextOfIds(engine: Engine, ids: readonly number[]): string {
  const keep = 2 * engine.model.contextSize;
  if (ids.length <= keep) return engine.detokenize(ids, { special: true });
  const cut = ids.length - keep;
  return engine.detokenize(ids.slice(cut), { special: true, context: ids.slice(Math.max(0, cut - 8), cut) });
}
