import { Readable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { FastifyReply } from 'fastify';
import { Answer, type TokenList } from '../core/answer.ts';

/** Up to this many ids go out as one plain JSON object; more are written in pieces. */
const IDS_IN_ONE_PIECE = 16_384;

/** Pieces written between two yields to the event loop (~100 KB of JSON). */
const PIECES_PER_TURN = 8;

/** A route's answer on the wire: a plain value is Fastify's JSON, an `Answer` is written as it says. */
export function writeAnswer(reply: FastifyReply, answer: unknown): unknown {
  if (!(answer instanceof Answer)) return answer;
  if (answer.text !== undefined) return reply.type(answer.contentType).send(answer.text);
  if (!answer.ids) return answer.fields;
  return sendWithIds(reply, answer.fields ?? {}, answer.ids);
}

/**
 * `{ ...fields, ids: [...] }` as JSON. A long id list (millions of numbers for a 31 MB text) is written one
 * slice's ids at a time, instead of one `JSON.stringify` that held the loop for 100 ms or more. The pieces
 * wait for the next turn of the loop every few: a loopback socket takes megabytes without back-pressure, and a
 * stream fed by a plain generator would then be drained in one go.
 */
function sendWithIds(reply: FastifyReply, fields: Record<string, unknown>, ids: TokenList): unknown {
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
