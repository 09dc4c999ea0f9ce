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
 *
 * The cases are built in route-fuzz-cases.ts from the values in route-fuzz-values.ts; this file sends them.
 */
import fc from 'fast-check';
import WebSocket from 'ws';
import { withDeadline } from './deadline.ts';
import { envelopeProblem, protocolOf, streamEndProblem, streamErrors } from './protocol-envelope.ts';
import { rawRequest } from './raw-http.ts';
import { type HttpCase, httpCase, type PostRoute, type WsCase, wsCase } from './route-fuzz-cases.ts';
import type { JsonSchema } from './route-fuzz-values.ts';
import { KindlingProcess } from './server-process.ts';

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
  server?: KindlingProcess | undefined;
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
