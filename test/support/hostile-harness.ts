/**
 * The harness of the hostile-input suites (test/integration/hostile-input-*.test.ts): the requests the hardening
 * issue reproduced as taking the server down, leaking, or ending a stream untruthfully, one case each, against the
 * real `kindling serve` as a child process watched by an RSS watchdog (1.5 GB). Each case must be answered within
 * 5 s by a 4xx in the protocol's own error envelope (or, where the issue allows it, a stream that ends with a final
 * event or a clamped 200), the server must stay under 1.5 GB, and a normal generation must work right after. A
 * case that breaks the server (too much memory, an exit, a server that no longer generates) gets it replaced for
 * the cases after it; one that only answers wrongly keeps it, so a suite of failing cases still ends in time.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import {
  envelopeMessage,
  envelopeProblem,
  type Protocol,
  protocolOf,
  streamEndProblem,
  streamErrors,
} from './protocol-envelope.ts';
import { type RawRequest, type RawResponse, rawRequest } from './raw-http.ts';
import { KindlingProcess } from './server-process.ts';

export const PASSWORD = 'hostile-secret';
export const ANSWER_MS = 5000;
export const STREAM = '/api/extra/generate/stream';

export type ServerKind = 'plain' | 'password';
const servers = new Map<ServerKind, KindlingProcess>();

export async function serverFor(kind: ServerKind): Promise<KindlingProcess> {
  const existing = servers.get(kind);
  if (existing?.running && !existing.rssKill) return existing;
  const server = await KindlingProcess.start(
    kind === 'password' ? { args: ['--password', PASSWORD], password: PASSWORD } : {},
  );
  servers.set(kind, server);
  return server;
}

/** A server a test started itself, killed with the others when the file ends. */
export function adoptServer(kind: ServerKind, server: KindlingProcess): void {
  const previous = servers.get(kind);
  if (previous && previous !== server) void previous.kill();
  servers.set(kind, server);
}

after(async () => {
  for (const server of servers.values()) await server.kill();
});

/**
 * What an answer must be:
 * - `rejected`: a 4xx in the path's protocol envelope (its message matching `mentions`, when given);
 * - `rejected-or-ends`: that, or a 200 stream whose last event is a final one and that carries no 5xx error;
 * - `ok-or-rejected`: that, or a 200 (a value the server clamps).
 */
export type Expectation = 'rejected' | 'rejected-or-ends' | 'ok-or-rejected';

export interface HostileCase {
  name: string;
  server?: ServerKind;
  request: RawRequest;
  expect: Expectation;
  mentions?: RegExp;
  /** Runs first (e.g. a generation to resume); gets the server. */
  before?: (server: KindlingProcess) => Promise<void>;
  /** Extra checks on the answer. */
  check?: (response: RawResponse) => void;
}

export const generate = (extra: Record<string, unknown>) => ({ prompt: 'Once', max_length: 4, ...extra });
export const chat = (extra: Record<string, unknown> = {}) => ({
  model: 'tiny',
  messages: [{ role: 'user', content: 'hi' }],
  max_tokens: 4,
  ...extra,
});

/** A generation streamed to its end under `genkey`, for the resume cases. */
export async function finishedGeneration(
  server: KindlingProcess,
  genkey: string,
  extra: Record<string, unknown> = {},
): Promise<void> {
  const response = await rawRequest(server.url, { path: STREAM, body: generate({ genkey, ...extra }) });
  assert.equal(response.status, 200, `the generation to resume did not start: ${response.text.slice(0, 300)}`);
  const end = streamEndProblem('kobold', response.text);
  assert.equal(end, undefined, `the generation to resume did not end: ${end}`);
}

/** Checks an answer against its case's expectation; returns nothing, throws what is wrong. */
export function judge(c: HostileCase, response: RawResponse): void {
  const protocol: Protocol = protocolOf(c.request.path);
  const shown = `HTTP ${response.status} ${response.text.slice(0, 400)}`;
  const rejected = response.status >= 400 && response.status < 500;
  if (rejected) {
    assert.equal(envelopeProblem(protocol, response.body), undefined, `${c.name}: ${shown}`);
    if (c.mentions)
      assert.match(envelopeMessage(response.body), c.mentions, `${c.name}: the error should name the field`);
  } else if (c.expect === 'rejected') {
    assert.fail(`${c.name}: expected a 4xx in the ${protocol} envelope, got ${shown}`);
  } else if (response.status !== 200) {
    assert.fail(`${c.name}: expected a 4xx or a 200, got ${shown}`);
  } else if (String(response.headers['content-type']).match(/event-stream|ndjson/)) {
    const end = streamEndProblem(protocol, response.text);
    assert.equal(end, undefined, `${c.name}: ${end}`);
    for (const error of streamErrors(protocol, response.text))
      assert.ok(
        !/\b5\d\d\b|server_error|api_error|model_error|internal/.test(JSON.stringify(error)),
        `${c.name}: a server error inside the stream: ${JSON.stringify(error)}`,
      );
  } else {
    assert.ok(response.body && typeof response.body === 'object', `${c.name}: a 200 that is not JSON: ${shown}`);
  }
  c.check?.(response);
}

/**
 * Runs one case. Whatever the case's verdict, the server must then be healthy and generate; if it is not, it is
 * killed so the next case gets a fresh one. The case's own failure is reported first.
 */
export async function runCase(kind: ServerKind, body: (server: KindlingProcess) => Promise<void>): Promise<void> {
  const server = await serverFor(kind);
  let failure: unknown;
  try {
    await body(server);
  } catch (error) {
    failure = error;
  }
  try {
    server.assertHealthy();
    await server.alive();
  } catch (error) {
    await server.kill();
    failure ??= error;
  }
  if (failure) throw failure;
}

/** Registers each case as its own test. */
export function hostileTests(cases: HostileCase[]): void {
  for (const c of cases) {
    test(c.name, async () => {
      await runCase(c.server ?? 'plain', async (server) => {
        await c.before?.(server);
        const response = await rawRequest(server.url, { ...c.request, timeoutMs: ANSWER_MS }).catch(
          async (error: Error) => {
            throw await server.explain(error); // the watchdog's verdict explains a broken connection best
          },
        );
        server.assertHealthy();
        judge(c, response);
      });
    });
  }
}
