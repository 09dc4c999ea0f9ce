import { KindlingError } from '../../core/kindling-error.ts';

/** Longest client-chosen key: Lite's `KCPP1234`, a UUID or an SDK's `stainless-node-retry-<uuid>` fit easily. */
export const STREAM_KEY_MAX_LENGTH = 128;
const STREAM_KEY_PATTERN = /^[A-Za-z0-9._:~+=@-]+$/;
export const STREAM_KEY_RULE = `1 to ${STREAM_KEY_MAX_LENGTH} characters from A-Z a-z 0-9 . _ : ~ + = @ -`;

/**
 * The one rule for every key a client chooses (Kobold `genkey`, the WebSocket `id`, `X-Kindling-Stream`,
 * `Idempotency-Key`): surrounding whitespace is trimmed, then the key must be a short
 * run of characters that is safe in a header, a log line and an error message as it is. A key that breaks the
 * rule is a 400 naming the field, at the edge, before it can reach a header or the scheduler (only `""` means
 * "no key", as in KoboldCpp).
 */
export function clientKey(field: string, raw: unknown): string | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'string') throw KindlingError.badInput(field, `must be a string of ${STREAM_KEY_RULE}`);
  if (raw === '') return undefined;
  const key = raw.trim();
  if (key === '') throw KindlingError.badInput(field, `must be ${STREAM_KEY_RULE}, not only whitespace`);
  if (key.length > STREAM_KEY_MAX_LENGTH)
    throw KindlingError.badInput(field, `must be ${STREAM_KEY_RULE} (got ${key.length} characters)`);
  if (!STREAM_KEY_PATTERN.test(key)) {
    const chars = [...key];
    const at = chars.findIndex((char) => !STREAM_KEY_PATTERN.test(char));
    const code = (chars[at]?.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0');
    throw KindlingError.badInput(field, `must be ${STREAM_KEY_RULE} (got U+${code} at position ${at + 1})`);
  }
  return key;
}

/**
 * The client's name for a resumable stream: `X-Kindling-Stream`, else `Idempotency-Key` (the header the
 * OpenAI and Anthropic SDKs already know how to send). It becomes the generation's key; with
 * `Last-Event-ID` a re-sent request reattaches to the running generation instead of starting another.
 */
export function streamKey(headers: Record<string, string | string[] | undefined>): string | undefined {
  for (const name of ['X-Kindling-Stream', 'Idempotency-Key']) {
    const raw = headers[name.toLowerCase()];
    const value = clientKey(name, Array.isArray(raw) ? raw.join(', ') : raw);
    if (value) return value;
  }
  return undefined;
}
