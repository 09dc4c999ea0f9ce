/**
 * Property-based fuzzing of every POST route and of the WebSocket messages, shared by
 * test/integration/route-fuzz.test.ts (fixed seed, bounded runs) and bench/fuzz.ts (long budget).
 *
 * The routes and their body schemas come from the running server's /api/openapi.json. Bodies are drawn from
 * those schemas, then made hostile field by field (wrong types, huge numbers, deep nesting, odd strings, and
 * for the fields that feed native code: grammars, JSON schemas, logit_bias maps, stop lists, genkeys), or are
 * arbitrary JSON or not JSON at all. Generation lengths are kept at 8 tokens or fewer so runs stay short.
 *
 * Every answer must be: under its deadline (no hang), below 500, a 4xx in its protocol's error envelope, and a
 * 200 stream that ends truthfully; the server must still be running and under its RSS limit afterwards.
 */
import fc from 'fast-check';
import WebSocket from 'ws';
import { withDeadline } from './deadline.ts';
import { envelopeProblem, protocolOf, streamEndProblem, streamErrors } from './protocol-envelope.ts';
import { rawRequest } from './raw-http.ts';
import { KindlingProcess } from './server-process.ts';

type JsonSchema = Record<string, unknown>;

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

/** Ms an HTTP answer or a WebSocket generation may take before it counts as a hang. */
export const CASE_DEADLINE_MS = 10_000;

/** The POST routes the server documents, with their JSON body schemas. */
export async function loadPostRoutes(url: string): Promise<PostRoute[]> {
  const response = await withDeadline(fetch(`${url}/api/openapi.json`), 10_000, 'GET /api/openapi.json');
  const doc = (await response.json()) as {
    paths: Record<string, Record<string, { requestBody?: { content?: Record<string, { schema?: JsonSchema }> } }>>;
  };
  const routes: PostRoute[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    const post = methods.post;
    if (!post) continue;
    const schema = post.requestBody?.content?.['application/json']?.schema;
    routes.push(schema ? { path, schema } : { path });
  }
  return routes.sort((a, b) => a.path.localeCompare(b.path));
}

// ---- hostile values --------------------------------------------------------------------------------------

const ODD_STRINGS = [
  '',
  ' ',
  '\u0000',
  '\ud800',
  '\udfff\ud800',
  '日本',
  'a\nb',
  '\r\n',
  '\t',
  '"',
  '\\',
  '{{',
  '%s%n%x',
  '<|im_end|>',
  '</s>',
  '<s>',
  '\u202e',
  '\ufeff',
  '🔥',
  '../../etc/passwd',
  '__proto__',
  'constructor',
  'NaN',
  'null',
];

export const oddString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 24 }) },
  { weight: 3, arbitrary: fc.constantFrom(...ODD_STRINGS) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 16 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 32 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 20_000 }).map((n) => 'x'.repeat(n)) },
);

export const hugeNumber: fc.Arbitrary<number> = fc.constantFrom(
  1e9,
  1e15,
  1e308,
  -1e308,
  4294967464,
  4294967296,
  2 ** 31,
  -(2 ** 31) - 1,
  2 ** 53 + 2,
  Number.MAX_SAFE_INTEGER,
  -1,
  -0,
  0,
  0.5,
  -0.5,
  1e-320,
);

/** Arrays nested `depth` deep: `[[[…]]]`. */
const nested = (depth: number): unknown => {
  let value: unknown = [];
  for (let i = 0; i < depth; i++) value = i % 2 ? { a: value } : [value];
  return value;
};

/** Any value of the wrong type for a field. */
export const wrongType: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  hugeNumber,
  oddString,
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: 5, max: 2000 }).map(nested),
);

/** GBNF grammars, valid and not: repeats with any bounds, empty classes, NULs, left recursion, undefined rules. */
export const grammarText: fc.Arbitrary<string> = (() => {
  const atom = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('"a"', '"b c"', '[a-z]', '[^\\n]', '.', 'x', 'root', '("a" | "b")') },
    { weight: 2, arbitrary: fc.string({ maxLength: 5 }).map((s) => JSON.stringify(s)) },
    { weight: 1, arbitrary: fc.constantFrom('[\\x00]', '[]', '"\\u0000"', '"', '(', ')', '|') },
  );
  const repeat = fc.oneof(
    fc.constantFrom('', '', '*', '+', '?', '{1000000}', '{,}', '{-1}', '{0}'),
    fc.tuple(fc.nat(12), fc.nat(12)).map(([a, b]) => `{${a},${b}}`),
    fc.nat(200).map((a) => `{${a}}`),
    fc.nat(9).map((a) => `{${a},}`),
  );
  const sequence = fc
    .array(fc.tuple(atom, repeat), { minLength: 1, maxLength: 6 })
    .map((parts) => parts.map(([a, r]) => a + r).join(' '));
  return fc.oneof(
    { weight: 4, arbitrary: sequence.map((s) => `root ::= ${s}`) },
    { weight: 2, arbitrary: fc.tuple(sequence, sequence).map(([a, b]) => `root ::= x ${b}\nx ::= ${a}`) },
    {
      weight: 1,
      arbitrary: fc.integer({ min: 1, max: 400 }).map((n) => `root ::= ${'('.repeat(n)}"a"${')'.repeat(n)}`),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom('root ::= root', 'root ::= root "a" | "b"', 'root ::= undefined', '::=', ''),
    },
    { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
  );
})();

/** JSON schemas, valid and not: unknown types, empty enums and unions, huge bounds, odd refs and patterns. */
export const jsonSchema: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  schema: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record(
      {
        type: fc.constantFrom('string', 'number', 'integer', 'boolean', 'null', 'object', 'array', 'foo', ''),
        minLength: fc.oneof(fc.nat(10), hugeNumber),
        maxLength: fc.oneof(fc.nat(10), hugeNumber),
        minItems: fc.oneof(fc.nat(5), hugeNumber),
        maxItems: fc.oneof(fc.nat(5), hugeNumber),
        minimum: hugeNumber,
        maximum: hugeNumber,
        pattern: fc.constantFrom('^a+$', '(', '[', '^(a|b){3,1}$', '.*', '\\d{1000000}'),
        items: tie('schema'),
        properties: fc.dictionary(oddString, tie('schema'), { maxKeys: 3 }),
        required: fc.array(oddString, { maxLength: 3 }),
        additionalProperties: fc.oneof(fc.boolean(), tie('schema')),
        $ref: fc.constantFrom('#', '#/definitions/x', '#/$defs/loop', 'http://example.com/s.json', ''),
        $defs: fc.record({ loop: fc.constant({ $ref: '#/$defs/loop' }) }),
      },
      { requiredKeys: [] },
    ),
    fc.record({ enum: fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 }) }),
    fc.record({ oneOf: fc.array(tie('schema'), { maxLength: 3 }) }),
    fc.record({ anyOf: fc.array(tie('schema'), { maxLength: 3 }) }),
    fc.record({ allOf: fc.array(tie('schema'), { maxLength: 3 }) }),
    fc.record({ const: fc.jsonValue({ maxDepth: 1 }) }),
    wrongType,
  ),
})).schema;

/** Fields that reach native code or headers get their own hostile values, beyond their schema's type. */
const FIELD_VALUES: Record<string, fc.Arbitrary<unknown>> = {
  grammar: grammarText,
  genkey: fc.oneof(fc.constantFrom('KCPP1234', 'K', 'a-b_c.d', ''), oddString),
  logit_bias: fc.oneof(
    fc.dictionary(
      fc.oneof(fc.nat(400).map(String), hugeNumber.map(String), oddString),
      fc.oneof(fc.double(), hugeNumber, fc.constant(-100)),
      { maxKeys: 4 },
    ),
    fc.array(fc.tuple(fc.oneof(fc.nat(400), hugeNumber), fc.double()), { maxLength: 3 }),
  ),
  stop_sequence: fc.oneof(fc.array(oddString, { maxLength: 8 }), fc.array(fc.constant('a'), { maxLength: 2000 })),
  stop: fc.oneof(fc.array(oddString, { maxLength: 8 }), oddString),
  stop_sequences: fc.array(oddString, { maxLength: 8 }),
  banned_tokens: fc.array(oddString, { maxLength: 8 }),
  dry_sequence_breakers: fc.oneof(fc.array(oddString, { maxLength: 8 }), oddString),
  json_schema: fc.record({ name: oddString, schema: jsonSchema }, { requiredKeys: [] }),
  schema: jsonSchema,
  format: fc.oneof(fc.constantFrom('json', '', 'yaml'), jsonSchema),
  rep_pen_range: fc.oneof(fc.nat(600), hugeNumber),
  dry_penalty_last_n: fc.oneof(fc.nat(600), hugeNumber),
  dry_allowed_length: fc.oneof(fc.nat(10), hugeNumber),
  top_k: fc.oneof(fc.nat(100), hugeNumber),
  n_probs: fc.oneof(fc.nat(10), hugeNumber),
  top_logprobs: fc.oneof(fc.nat(20), hugeNumber),
  logprobs: fc.oneof(fc.boolean(), fc.nat(20), hugeNumber),
  ids: fc.array(fc.oneof(fc.nat(300), hugeNumber), { maxLength: 20 }),
  context: fc.array(fc.oneof(fc.nat(300), hugeNumber), { maxLength: 20 }),
};

/** Values for a JSON schema, with any field sometimes replaced by a hostile value. */
export function fromSchema(schema: unknown, depth = 0, field?: string): fc.Arbitrary<unknown> {
  const special = field ? FIELD_VALUES[field] : undefined;
  const base = baseFromSchema(schema, depth);
  // A wrong type is rare per field, so that most bodies pass validation and reach the code behind it.
  const options = [
    { weight: 30, arbitrary: base },
    { weight: 1, arbitrary: wrongType },
  ];
  if (special) options.push({ weight: 30, arbitrary: special });
  return fc.oneof(...options);
}

function baseFromSchema(schema: unknown, depth: number): fc.Arbitrary<unknown> {
  if (!schema || typeof schema !== 'object' || depth > 4) return fc.jsonValue({ maxDepth: 2 });
  const s = schema as JsonSchema;
  let arbitrary: fc.Arbitrary<unknown>;
  const union = (s.anyOf ?? s.oneOf) as unknown[] | undefined;
  if (Array.isArray(s.enum) && s.enum.length > 0) arbitrary = fc.constantFrom(...s.enum);
  else if ('const' in s) arbitrary = fc.constant(s.const);
  else if (Array.isArray(union) && union.length > 0)
    arbitrary = fc.oneof(...union.map((option) => baseFromSchema(option, depth + 1)));
  else {
    switch (s.type) {
      case 'string':
        arbitrary = fc.oneof({ weight: 3, arbitrary: fc.lorem({ maxCount: 4 }) }, { weight: 1, arbitrary: oddString });
        break;
      case 'integer':
        arbitrary = fc.oneof(
          { weight: 3, arbitrary: fc.integer({ min: -2, max: 600 }) },
          { weight: 1, arbitrary: hugeNumber },
        );
        break;
      case 'number':
        arbitrary = fc.oneof(
          { weight: 3, arbitrary: fc.double({ min: -2, max: 4, noNaN: true }) },
          { weight: 1, arbitrary: hugeNumber },
        );
        break;
      case 'boolean':
        arbitrary = fc.boolean();
        break;
      case 'array':
        arbitrary = fc.array(fromSchema(s.items, depth + 1), { maxLength: 4 });
        break;
      case 'object': {
        const properties = (s.properties ?? {}) as Record<string, unknown>;
        const model: Record<string, fc.Arbitrary<unknown>> = {};
        for (const [name, property] of Object.entries(properties)) model[name] = fromSchema(property, depth + 1, name);
        const required = Array.isArray(s.required) ? (s.required as string[]) : [];
        const record = fc.record(model, { requiredKeys: required.filter((name) => name in model) });
        // Sometimes a field the schema does not know, sometimes a required one left out.
        arbitrary = fc
          .tuple(record, fc.dictionary(oddString, fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 }), fc.nat(9))
          .map(([known, extra, dice]) => {
            const out: Record<string, unknown> = dice === 0 ? { ...extra, ...known } : { ...known };
            if (dice === 1 && required[0]) delete out[required[0]];
            return out;
          });
        break;
      }
      default:
        arbitrary = fc.jsonValue({ maxDepth: 2 });
    }
  }
  return s.nullable === true ? fc.oneof(arbitrary, fc.constant(null)) : arbitrary;
}

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

// ---- running cases ---------------------------------------------------------------------------------------

/** Why an HTTP answer breaks the properties, or undefined. */
export function judgeHttp(c: HttpCase, status: number, contentType: string, text: string): string | undefined {
  const protocol = protocolOf(c.path);
  if (status >= 500) return `HTTP ${status}: ${text.slice(0, 300)}`;
  if (status >= 400) {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {}
    return envelopeProblem(protocol, body);
  }
  if (/event-stream|ndjson/.test(contentType)) {
    const end = streamEndProblem(protocol, text);
    if (end) return end;
    for (const error of streamErrors(protocol, text)) {
      const shown = JSON.stringify(error) ?? '';
      if (/"status":\s*5\d\d|server_error|api_error|model_error|"internal"/.test(shown))
        return `a server error inside a 200 stream: ${shown.slice(0, 300)}`;
    }
  }
  return undefined;
}

/** Holds the server the cases run against, restarting it when a case broke it, and the figures to report. */
export class FuzzTarget {
  server?: KindlingProcess;
  httpCases = 0;
  wsCases = 0;
  restarts = 0;
  peakRssMb = 0;

  constructor(private readonly serverArgs: string[] = []) {}

  async ready(): Promise<KindlingProcess> {
    if (this.server?.running && !this.server.rssKill) return this.server;
    if (this.server) {
      this.peakRssMb = Math.max(this.peakRssMb, this.server.peakRssMb);
      this.restarts++;
    }
    this.server = await KindlingProcess.start({ args: this.serverArgs });
    return this.server;
  }

  /** A server a case left in doubt (it hung, or failed) is replaced before the next case. */
  async discard(): Promise<void> {
    if (!this.server) return;
    this.peakRssMb = Math.max(this.peakRssMb, this.server.peakRssMb);
    await this.server.kill();
  }

  async close(): Promise<void> {
    await this.discard();
    this.server = undefined;
  }

  peak(): number {
    return Math.max(this.peakRssMb, this.server?.peakRssMb ?? 0);
  }

  /** Runs one case; throws (for fast-check) with what went wrong. */
  async run(c: HttpCase | WsCase): Promise<void> {
    const server = await this.ready();
    try {
      const problem = c.kind === 'http' ? await this.runHttp(server, c) : await this.runWs(server, c);
      const health = server.problem();
      if (health) throw new Error(health);
      if (problem) throw new Error(problem);
    } catch (error) {
      await this.discard();
      throw error;
    }
  }

  private async runHttp(server: KindlingProcess, c: HttpCase): Promise<string | undefined> {
    this.httpCases++;
    const response = await rawRequest(server.url, {
      path: c.path,
      body: c.body,
      headers: c.headers,
      timeoutMs: CASE_DEADLINE_MS,
    }).catch(async (error: Error) => {
      throw await server.explain(error);
    });
    return judgeHttp(c, response.status, String(response.headers['content-type'] ?? ''), response.text);
  }

  private async runWs(server: KindlingProcess, c: WsCase): Promise<string | undefined> {
    this.wsCases++;
    const socket = new WebSocket(`${server.url.replace(/^http/, 'ws')}/api/extra/generate/ws`);
    const problems: string[] = [];
    /**
     * Start ids still owed an `end` or `error` (a list: one entry per start frame). The server may name a
     * generation by its key trimmed, or cut to the longest legal key, so a terminal message settles the first
     * entry that matches in any of those forms.
     */
    const owed: string[] = [];
    const settle = (id: string) => {
      const index = owed.findIndex((raw) =>
        [raw, raw.trim(), raw.slice(0, 128), raw.trim().slice(0, 128)].includes(id),
      );
      if (index >= 0) owed.splice(index, 1);
    };
    let pongs = 0;
    let closedEarly: string | undefined;
    try {
      await withDeadline(
        new Promise<void>((resolve, reject) => {
          socket.once('open', () => resolve());
          socket.once('error', reject);
        }),
        CASE_DEADLINE_MS,
        'the WebSocket handshake',
      );
      socket.on('message', (data) => {
        let message: { type?: unknown; id?: unknown; status?: unknown; message?: unknown };
        try {
          message = JSON.parse(String(data));
        } catch {
          problems.push(`a frame that is not JSON: ${String(data).slice(0, 200)}`);
          return;
        }
        if (!['queued', 'token', 'end', 'error', 'aborted', 'pong'].includes(String(message.type)))
          problems.push(`an unknown message type: ${String(data).slice(0, 200)}`);
        if (message.type === 'error') {
          if (typeof message.status !== 'number' || typeof message.message !== 'string')
            problems.push(`an error without status and message: ${String(data).slice(0, 200)}`);
          else if (message.status >= 500) problems.push(`a ${message.status} error: ${message.message.slice(0, 200)}`);
        }
        if (message.type === 'pong') pongs++;
        if (typeof message.id === 'string' && ['end', 'error'].includes(String(message.type))) settle(message.id);
      });
      socket.on('close', (code) => {
        closedEarly = `the server closed the WebSocket (code ${code})`;
      });
      for (const frame of c.messages) {
        let parsed: { type?: unknown; id?: unknown } | undefined;
        try {
          parsed = JSON.parse(frame);
        } catch {}
        if (parsed?.type === 'start' && typeof parsed.id === 'string') owed.push(parsed.id);
        socket.send(frame);
      }
      socket.send('{"type":"ping"}');
      const end = Date.now() + CASE_DEADLINE_MS;
      while ((owed.length > 0 || pongs === 0) && !closedEarly) {
        if (Date.now() > end)
          return `no end or error within ${CASE_DEADLINE_MS} ms for ${owed.map((id) => JSON.stringify(id.slice(0, 40))).join(', ') || 'the closing ping'}`;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      // A start with a malformed body may fail validation without naming its id: the ping's pong shows the
      // connection is still served, which is what matters for those.
      if (closedEarly && !server.running) return closedEarly;
      if (closedEarly && pongs === 0) return closedEarly;
      return problems[0];
    } finally {
      socket.terminate();
    }
  }
}

export interface FuzzOptions {
  seed: number;
  numRuns: number;
  /** Stop (without failing) after this long. */
  timeLimitMs: number;
  /** Only the POST routes whose path contains one of these (`ws` keeps the WebSocket property); all by default. */
  only?: string[];
}

/** The WebSocket property's generate schema: the one /api/v1/generate documents. */
export function generateSchema(routes: PostRoute[]): JsonSchema | undefined {
  return routes.find((route) => route.path === '/api/v1/generate')?.schema;
}

/** Runs the HTTP and WebSocket properties against `target`; fast-check's details of each. */
export async function fuzzRoutes(
  target: FuzzTarget,
  options: FuzzOptions,
): Promise<{ http: fc.RunDetails<[HttpCase]>; ws: fc.RunDetails<[WsCase]> }> {
  const server = await target.ready();
  const all = await loadPostRoutes(server.url);
  const only = options.only;
  const routes = only ? all.filter((route) => only.some((part) => route.path.includes(part))) : all;
  const skipped = { failed: false, numRuns: 0, interrupted: false } as const;
  const parameters = {
    seed: options.seed,
    numRuns: options.numRuns,
    interruptAfterTimeLimit: options.timeLimitMs,
    markInterruptAsFailure: false,
    endOnFailure: false,
  };
  const http =
    routes.length > 0
      ? await fc.check(
          fc.asyncProperty(httpCase(routes), (c) => target.run(c)),
          parameters,
        )
      : (skipped as unknown as fc.RunDetails<[HttpCase]>);
  if (only && !only.includes('ws')) return { http, ws: skipped as unknown as fc.RunDetails<[WsCase]> };
  // The WebSocket property gets a quarter of the budget after the HTTP one, or all of it when alone.
  const share = routes.length > 0 ? 4 : 1;
  const ws = await fc.check(
    fc.asyncProperty(wsCase(generateSchema(all)), (c) => target.run(c)),
    {
      ...parameters,
      numRuns: Math.max(1, Math.round(options.numRuns / share)),
      interruptAfterTimeLimit: Math.round(options.timeLimitMs / share),
    },
  );
  return { http, ws };
}

/** A failed run in a form a person can act on: the shrunk case and the error. */
export function describeFailure<T extends [HttpCase] | [WsCase]>(details: fc.RunDetails<T>, limit = 600): string {
  if (!details.failed) return '';
  const c = details.counterexample?.[0] as HttpCase | WsCase | undefined;
  const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
  const cut = (text: string) => (text.length > limit ? `${text.slice(0, limit)}… (${text.length} chars)` : text);
  const shown =
    c?.kind === 'http'
      ? `POST ${c.path} ${JSON.stringify(c.headers)} body ${JSON.stringify(cut(c.body))}`
      : `WebSocket frames ${JSON.stringify(c?.messages.map(cut))}`;
  return `${error}\n  counterexample (seed ${details.seed}, path "${details.counterexamplePath}", after ${details.numRuns} runs and ${details.numShrinks} shrinks): ${shown}`;
}
