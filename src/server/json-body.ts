import { StringDecoder } from 'node:string_decoder';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { KindlingError } from '../core/kindling-error.ts';

/** The body is empty or only whitespace: Kobold's "no body". */
export const BLANK_BODY = Symbol('blank body');

/** Decoded text between two turns of the event loop: ~1–4 ms of UTF-8 decoding. */
const YIELD_EVERY_BYTES = 1 << 20;

/**
 * A request body as JSON, decoded as its chunks arrive, within `limitBytes`. For a body of many megabytes,
 * joining the chunks, decoding and parsing them at the end held the loop for 100–300 ms (31 MB) in one stretch;
 * here decoding keeps pace with the socket (a turn of the loop at least every megabyte), nothing is joined as
 * bytes, and `JSON.parse` waits for a turn of its own. A body past the limit is a 413 as soon as it is.
 */
export async function readJsonBody(
  body: AsyncIterable<Buffer | string>,
  limitBytes: number,
  declaredLength?: number,
): Promise<unknown> {
  if (declaredLength !== undefined && declaredLength > limitBytes) throw tooLarge();
  const decoder = new StringDecoder('utf8');
  let text = '';
  let received = 0;
  let sinceTurn = 0;
  let blank = true;
  for await (const chunk of body) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    received += bytes.length;
    if (received > limitBytes) throw tooLarge();
    const decoded = decoder.write(bytes);
    if (blank && decoded.trim() !== '') blank = false;
    text += decoded;
    sinceTurn += bytes.length;
    if (sinceTurn >= YIELD_EVERY_BYTES) {
      sinceTurn = 0;
      await nextTurn();
    }
  }
  const rest = decoder.end();
  if (blank && rest.trim() !== '') blank = false;
  text += rest;
  if (declaredLength !== undefined && received !== declaredLength)
    throw new KindlingError('bad_input', `The body was ${received} bytes where Content-Length said ${declaredLength}.`);
  if (blank) return BLANK_BODY;
  if (received > YIELD_EVERY_BYTES) await nextTurn();
  return JSON.parse(text);
}

function tooLarge(): KindlingError {
  return new KindlingError('payload_too_large', 'Payload is too big.');
}
