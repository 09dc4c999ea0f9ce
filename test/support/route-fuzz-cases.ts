/**
 * The cases the route fuzzing sends: one POST request to a documented route, or a few WebSocket frames, with
 * bodies built from route-fuzz-values.ts and generation lengths held at 8 tokens or fewer so runs stay short.
 */
import fc from 'fast-check';
import { fromSchema, hugeNumber, type JsonSchema, jsonSchema, oddString, wrongType } from './route-fuzz-values.ts';

export interface PostRoute {
  path: string;
  schema?: JsonSchema;
}

export interface HttpCase {
  kind: 'http';
  path: string;
  /** The body exactly as sent. */
  body: string;
  headers: Record<string, string>;
}

export interface WsCase {
  kind: 'ws';
  /** Frames sent in order (text). */
  messages: string[];
}

/** The largest fuzzed body; big bodies have their own cases in hostile-input-requests.test.ts. */
const MAX_BODY_CHARS = 2 * 1024 * 1024;

/** The routes that generate, and the field each reads its length from (Ollama: `options.num_predict`). */
const GENERATION_LENGTH: Array<[RegExp, string]> = [
  [/^\/api\/(v1|latest)\/generate$|^\/api\/extra\/generate\/stream$/, 'max_length'],
  [/^\/v1\/(chat\/)?completions$|^\/v1\/messages$/, 'max_tokens'],
  [/^\/api\/(generate|chat)$/, 'num_predict'],
];

/**
 * Keeps a generation short: its length field (and `max_completion_tokens`) at most 8, set when absent. A length
 * of the wrong type stays wrong; anything that is not an object, or not a generation route, is left alone.
 */
export function shortGeneration(path: string, value: unknown, length: number): unknown {
  const field = GENERATION_LENGTH.find(([pattern]) => pattern.test(path))?.[1];
  if (!field || !value || typeof value !== 'object' || Array.isArray(value)) return value;
  const out = { ...(value as Record<string, unknown>) };
  const short = (current: unknown) => (current === undefined || typeof current === 'number' ? length : current);
  if (field === 'num_predict') {
    const options = out.options;
    if (options === undefined || (options && typeof options === 'object' && !Array.isArray(options)))
      out.options = {
        ...(options as object | undefined),
        num_predict: short((options as { num_predict?: unknown })?.num_predict),
      };
  } else {
    out[field] = short(out[field]);
    if (typeof out.max_completion_tokens === 'number') out.max_completion_tokens = length;
  }
  return out;
}

/** A body's text: JSON of a value, sometimes with a number spelled so JSON.parse reads Infinity or loses digits. */
const bodyText = (value: unknown): fc.Arbitrary<string> =>
  fc
    .tuple(fc.nat(19), fc.constantFrom('1e400', '-1e400', '123456789012345678901234567890', '0.0000001e-400', '-0'))
    .map(([dice, literal]) => {
      const text = JSON.stringify(value) ?? 'null';
      return dice === 0 ? text.replace(/(?<=[:[,])\s*-?\d+(\.\d+)?(e[+-]?\d+)?/i, literal) : text;
    });

/** Bodies that are not JSON, or JSON far too deep for a recursive reader. */
const notJson: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom('', '{', '{"prompt":', '[1,2', 'nul', '{"a":1}{"b":2}', '\u0000', '{"prompt":"\\ud800"}'),
  fc.integer({ min: 1000, max: 200_000 }).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`),
  fc.integer({ min: 1000, max: 100_000 }).map((n) => `{"prompt":"x","a":${'{"a":'.repeat(n)}1${'}'.repeat(n)}}`),
);

const headerValue = fc.oneof(
  fc.constantFrom('0', '1', '99999', '1e300', '0x10', '-1', 'NaN', '0.5', '4.2', ''),
  fc.stringMatching(/^[\x21-\x7e]{0,24}$/),
);

/** One POST request to one of `routes`. */
export function httpCase(routes: PostRoute[]): fc.Arbitrary<HttpCase> {
  return fc.oneof(
    ...routes.map((route) =>
      fc
        .tuple(
          fc.oneof(
            {
              weight: 8,
              arbitrary: fc
                .tuple(
                  route.schema ? fromSchema(route.schema) : fc.oneof(jsonSchema, fc.record({ schema: jsonSchema })),
                  fc.integer({ min: 1, max: 8 }),
                )
                .chain(([value, length]) => bodyText(shortGeneration(route.path, value, length))),
            },
            { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value)) },
            { weight: 1, arbitrary: notJson },
          ),
          fc.record(
            { 'last-event-id': headerValue, 'x-kindling-stream': headerValue, 'idempotency-key': headerValue },
            { requiredKeys: [] },
          ),
        )
        .map(([body, headers]): HttpCase => ({ kind: 'http', path: route.path, body, headers }))
        // Bodies past the server's size limit are the hostile-input suite's (a 413 may cut the upload: EPIPE).
        .filter((c) => c.body.length <= MAX_BODY_CHARS),
    ),
  );
}

/** A few WebSocket frames: start messages with fuzzed Kobold bodies, aborts, pings, and frames that are nonsense. */
export function wsCase(generateSchema: JsonSchema | undefined): fc.Arbitrary<WsCase> {
  const request = fc
    .tuple(fromSchema(generateSchema), fc.integer({ min: 1, max: 8 }))
    .map(([value, length]) => shortGeneration('/api/v1/generate', value, length));
  const id = fc.oneof(fc.constantFrom('w1', 'w2', 'KCPP1234'), oddString);
  const message = fc.oneof(
    {
      weight: 5,
      arbitrary: fc
        .record(
          {
            type: fc.constant('start'),
            id,
            request,
            last_event_id: fc.oneof(fc.nat(20), hugeNumber, wrongType),
          },
          { requiredKeys: ['type', 'id', 'request'] },
        )
        .map((m) => JSON.stringify(m)),
    },
    {
      weight: 2,
      arbitrary: fc.record({ type: fc.constant('abort'), id: fc.oneof(id, wrongType) }).map((m) => JSON.stringify(m)),
    },
    { weight: 1, arbitrary: fc.constant('{"type":"ping"}') },
    {
      weight: 2,
      arbitrary: fc
        .record(
          { type: fc.oneof(fc.constantFrom('start', 'abort', 'ping', 'resume', ''), wrongType) },
          { requiredKeys: [] },
        )
        .chain((m) =>
          fc.dictionary(oddString, wrongType, { maxKeys: 3 }).map((extra) => JSON.stringify({ ...extra, ...m })),
        ),
    },
    { weight: 1, arbitrary: notJson },
  );
  return fc.array(message, { minLength: 1, maxLength: 5 }).map((messages): WsCase => ({ kind: 'ws', messages }));
}
