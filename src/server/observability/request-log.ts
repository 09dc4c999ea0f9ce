import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { KindlingError } from '../../core/kindling-error.ts';
import type { Generation } from '../../scheduler/generation.ts';
import { principalOf } from '../principal.ts';
import { fromFastifyError } from '../request-errors.ts';
import type { ServerContext } from '../server-context.ts';
import { keyNameOf } from './key-name.ts';
import { servedGenerationOf } from './served-generation.ts';

/**
 * A client that left mid-stream ends an anonymous generation within one batch: its line waits this long for the
 * generation's final figures. A keyed one may run on for a resume; its line is then written with the figures so far.
 */
const SETTLE_MS = 2000;
/** With `--log-prompts`, a prompt is logged up to this many characters (a 32 MB story would not fit a log line). */
const PROMPT_LOG_CHARS = 65_536;
/** A path no route matched is logged up to this many characters. */
const PATH_LOG_CHARS = 256;

/** pino's level numbers, to skip building a line nobody will see. */
const LEVELS = { debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Number.POSITIVE_INFINITY } as const;

/**
 * How a failed request failed, so that an operator can tell a client that went away (`network`) from a request the
 * server refused by its rules (`business`: bad input, a limit, a full queue, shutdown), a failure of the model
 * (`engine`) and a bug of ours (`internal`).
 */
type Failure = 'network' | 'business' | 'engine' | 'internal';

/**
 * One log line per HTTP request, written when its response is over, a stream's when the stream ended:
 * who (the key's name, never the key; the address), what (route, protocol, status), the generation's figures (tokens,
 * queue wait, time to first token, stop reason) and how long it took. The same moment feeds the request metrics.
 * The id every line of the request carries (`reqId`) is echoed as `X-Request-Id`. The line is at level info, or
 * error (with the error and its cause chain) when the engine or the server failed: at the default level (warn) a
 * failure still leaves its context behind.
 */
export function installRequestLog(app: FastifyInstance, context: ServerContext): void {
  const { config, metrics } = context;
  const threshold = LEVELS[config.logLevel];
  const errors = new WeakMap<FastifyRequest, KindlingError>();
  app.addHook('onRequest', async (request, reply) => {
    // On the raw response, so that a hijacked (streamed) reply sends it too.
    reply.raw.setHeader('x-request-id', request.id);
    if (threshold === LEVELS.silent && !metrics) return;
    const arrived = Date.now();
    const started = performance.now();
    reply.raw.once('close', () => {
      void settle(request, reply).then(() => {
        const { line, failed } = requestLine(request, reply, errors.get(request), arrived, performance.now() - started);
        metrics?.request({
          route: line.route,
          protocol: line.protocol,
          status: line.status,
          code: line.error_code,
          disconnected: line.disconnected,
          resumed: line.resumed,
        });
        const level = line.failure === 'engine' || line.failure === 'internal' ? 'error' : 'info';
        if (LEVELS[level] < threshold) return;
        if (config.logPrompts) {
          const prompt = servedGenerationOf(request)?.prompt();
          if (prompt !== undefined) Object.assign(line, promptFields(prompt));
        }
        if (level === 'error') request.log.error({ ...line, err: failed }, 'request');
        else request.log.info(line, 'request');
      });
    });
  });
  app.addHook('onError', async (request, _reply, error) => {
    errors.set(request, fromFastifyError(error));
  });
}

/** Waits (a little) for the request's generation to end, so its line has the final figures. */
async function settle(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const generation = servedGenerationOf(request)?.generation;
  if (!generation || generation.log.ended || reply.raw.writableFinished) return;
  const deadline = Date.now() + SETTLE_MS;
  while (!generation.log.ended && Date.now() < deadline) {
    await generation.log.waitForPartAfter(generation.log.lastId, AbortSignal.timeout(deadline - Date.now()));
  }
}

function requestLine(
  request: FastifyRequest,
  reply: FastifyReply,
  error: KindlingError | undefined,
  arrived: number,
  durationMs: number,
) {
  const served = servedGenerationOf(request);
  const generation = served?.generation;
  const route = request.routeOptions.url;
  const disconnected = !reply.raw.writableFinished;
  const figures = generation ? generationFields(generation, served.resumed ? undefined : arrived) : undefined;
  const final = generation?.log.last;
  const failed = error ?? (final?.type === 'error' ? final.error : undefined);
  const line = {
    method: request.method,
    route: route ?? '(unmatched)',
    ...(route ? {} : { path: request.url.split('?')[0]?.slice(0, PATH_LOG_CHARS) }),
    protocol: request.routeOptions.config?.protocol ?? generation?.origin.protocol ?? 'server',
    status: reply.raw.statusCode,
    key: keyNameOf(generation?.origin.principal ?? principalOf(request)),
    ip: principalOf(request).replace(/^addr:/, ''),
    duration_ms: round(durationMs),
    resumed: served?.resumed ?? false,
    disconnected,
    ...figures,
    error_code: failed?.code,
    failure: failureOf(failed, disconnected),
  };
  return { line, failed };
}

/** The generation's figures; `arrived` (the request's arrival) when the request started it, for its TTFT. */
function generationFields(generation: Generation, arrived: number | undefined) {
  const last = generation.log.last;
  const finish = last?.type === 'finish' ? last : undefined;
  const queueWaitMs = generation.startedAt !== undefined ? generation.startedAt - generation.createdAt : undefined;
  const firstTokenAt =
    finish && finish.usage.completionTokens > 0 && generation.startedAt !== undefined
      ? generation.startedAt + finish.timings.promptMs
      : undefined;
  return {
    generation: generation.id,
    // The client's own key (Kobold genkey, X-Kindling-Stream, Idempotency-Key): what the client's logs know it by.
    genkey: generation.clientKey ? generation.key : undefined,
    prompt_tokens: finish?.usage.promptTokens ?? generation.promptTokens.length,
    cached_prompt_tokens: finish?.usage.cachedPromptTokens,
    generated_tokens: finish?.usage.completionTokens ?? tokensSoFar(generation),
    queue_wait_ms: queueWaitMs,
    ttft_ms: firstTokenAt === undefined ? undefined : round(firstTokenAt - (arrived ?? generation.createdAt)),
    stop_reason: last?.type === 'finish' ? last.reason : last?.type === 'error' ? 'error' : 'running',
  };
}

/** Tokens a generation that has not ended yet has streamed (its line is written before its end). */
function tokensSoFar(generation: Generation): number {
  let tokens = 0;
  for (const { part } of generation.log.partsAfter(0)) if (part.type === 'text-delta') tokens += part.tokens.length;
  return tokens;
}

function failureOf(error: KindlingError | undefined, disconnected: boolean): Failure | undefined {
  if (disconnected) return 'network';
  if (!error) return undefined;
  if (error.code === 'model_error') return 'engine';
  if (error.code === 'internal') return 'internal';
  return 'business';
}

function promptFields(prompt: string) {
  return prompt.length > PROMPT_LOG_CHARS
    ? { prompt: prompt.slice(0, PROMPT_LOG_CHARS), prompt_chars: prompt.length }
    : { prompt };
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
