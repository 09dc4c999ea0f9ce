import { renderChatTranscript } from './chat-transcript.ts';
import { type ClientConfig, definedFields, randomKey } from './client-config.ts';
import { AbortedError, ConnectionRefusedError, HttpStatusError, NetworkError, ProtocolError } from './client-errors.ts';
import type {
  GenerationResult,
  ServerInfo,
  StreamCallOptions,
  StreamEvent,
  TextClient,
  TextRequest,
  TextStream,
} from './client-types.ts';
import { isFailoverError, refusedByAll, requestJsonWithFailover } from './endpoints.ts';
import { requestJson, toClientError } from './http-request.ts';
import { recoverFromCheck } from './kobold-check-recovery.ts';
import { pollGeneration, type SyncGenerate } from './kobold-poll.ts';
import { type KoboldAdapterHost, KoboldStreamAdapter } from './kobold-stream-adapter.ts';
import { LinkedAbortController } from './linked-abort-controller.ts';
import { isRecord } from './provider-error-body.ts';
import { backoffDelay, sleep } from './retry-policy.ts';
import { driveStream } from './stream-driver.ts';
import { TextStreamImpl } from './text-stream.ts';

const ABORT_REQUEST_TIMEOUT_MS = 3000;

type KeyedRequest = TextRequest & { genkey: string };

/**
 * The Kobold API of KoboldCpp and of our server. Streams use `/api/extra/generate/stream`; every generation
 * carries a genkey so it can be checked, aborted and (on our server) resumed by last event id. Against plain
 * KoboldCpp a cut stream is recovered through `/api/extra/generate/check`. Where SSE cannot be used (no stream
 * endpoint, or a proxy that buffers event streams), `poll()` streams through `/check` instead.
 */
export class KoboldClient implements TextClient {
  readonly api = 'kobold' as const;
  readonly #config: ClientConfig;
  #kindling: Promise<boolean> | undefined;
  /** Set once the server answered that it has no SSE endpoint. */
  #sseMissing = false;
  /** Set once a stream was found held back by a proxy (`held-back-watch.ts`): why this client now polls. */
  #degraded: string | undefined;
  readonly #host: KoboldAdapterHost = {
    headers: () => this.headers(),
    isKindling: (signal) => this.isKindling(signal),
    abort: (genkey) => this.abort(genkey),
    degraded: (reason) => {
      this.#degraded ??= reason;
    },
  };

  constructor(config: ClientConfig) {
    this.#config = config;
  }

  /** Why `stream()` polls instead of streaming, once a proxy was found holding streams back (`'auto'` only). */
  get degraded(): string | undefined {
    return this.#degraded;
  }

  /**
   * Streams over SSE (`/api/extra/generate/stream`), or by polling when `koboldTransport` is `'poll'`. With
   * `'auto'` (default) a server that has no SSE endpoint (404, 405 or 501 before any text) is polled instead,
   * and so is a stream that a proxy holds back (see `held-back-watch.ts`): the rest of that generation comes
   * through `/check` after a `degraded` status, and this client polls from then on, each polled stream starting
   * with the same status.
   */
  stream(request: TextRequest, options?: StreamCallOptions): TextStream {
    const keyed = { ...request, genkey: request.genkey ?? randomKey('KCPP') };
    const transport = this.#config.options.koboldTransport ?? 'auto';
    return new TextStreamImpl((signal) => {
      if (transport === 'poll' || (transport === 'auto' && this.#sseMissing)) return this.#poll(keyed, signal);
      if (transport === 'auto' && this.#degraded !== undefined) return this.#degradedPoll(keyed, signal);
      return this.#sse(keyed, signal, transport === 'auto');
    }, options?.signal);
  }

  /**
   * Streams by polling whatever `koboldTransport` says: a sync `/api/v1/generate` runs while
   * `/api/extra/generate/check` is polled for the text so far (see `kobold-poll.ts`). Events and errors are
   * those of `stream()`; text arrives every `pollIntervalMs` instead of per token.
   */
  poll(request: TextRequest, options?: StreamCallOptions): TextStream {
    const keyed = { ...request, genkey: request.genkey ?? randomKey('KCPP') };
    return new TextStreamImpl((signal) => this.#poll(keyed, signal), options?.signal);
  }

  async *#sse(
    request: KeyedRequest,
    signal: AbortSignal,
    fallback: boolean,
  ): AsyncGenerator<StreamEvent, GenerationResult, undefined> {
    try {
      const body = toKoboldBody(request, request.genkey);
      const adapter = new KoboldStreamAdapter(this.#host, this.#config, request.genkey, body, fallback);
      return yield* driveStream(adapter, this.#config, signal);
    } catch (error) {
      if (!fallback || !sseMissing(error)) throw error;
      this.#sseMissing = true;
    }
    return yield* this.#poll(request, signal);
  }

  async *#degradedPoll(
    request: KeyedRequest,
    signal: AbortSignal,
  ): AsyncGenerator<StreamEvent, GenerationResult, undefined> {
    yield { type: 'status', status: 'degraded', detail: { transport: 'poll', reason: this.#degraded ?? '' } };
    return yield* this.#poll(request, signal);
  }

  #poll(request: KeyedRequest, signal: AbortSignal): AsyncGenerator<StreamEvent, GenerationResult, undefined> {
    const stops = toKoboldBody(request, request.genkey)['stop_sequence'];
    const generate: SyncGenerate = (r, o) => this.generate(r, o);
    return pollGeneration(this.#config, generate, request, Array.isArray(stops) ? stops : [], signal);
  }

  /**
   * Sync `POST /api/v1/generate`. When the connection drops, both KoboldCpp and our server keep generating a
   * sync request, so the answer is recovered through `/check` instead of generating it twice.
   */
  async generate(request: TextRequest, options?: StreamCallOptions): Promise<GenerationResult> {
    const genkey = request.genkey ?? randomKey('KCPP');
    const controller = new LinkedAbortController(options?.signal);
    const signal = controller.signal;
    const body = toKoboldBody(request, genkey);
    const endpoints = this.#config.endpoints;
    const hops = endpoints.size - 1;
    const refused = new Map<string, ConnectionRefusedError>();
    let failures = 0;
    try {
      for (;;) {
        const url = endpoints.current;
        try {
          const response = await requestJson(
            this.#config.fetch,
            { method: 'POST', url: `${url}/api/v1/generate`, headers: this.headers(), body },
            signal,
          );
          return readSyncResult(response);
        } catch (caught) {
          const error = toClientError(caught, signal);
          if (error instanceof AbortedError || !error.retryable) throw error;
          const failover = hops > 0 && isFailoverError(error);
          // Refused before any answer: no server runs there (with several URLs: at any of them). Later, a
          // restarting server may refuse for a moment.
          if (error instanceof ConnectionRefusedError && failures === refused.size) {
            refused.set(url, error);
            if (!failover || refused.size > hops) throw refusedByAll([...refused.values()]);
          }
          if (failover) endpoints.failed(url);
          if (++failures > this.#config.retry.maxRetries + (failover ? hops : 0)) throw error;
          // A cut connection or a 409 (key still running) means the generation may be alive server-side; a
          // refused one never reached a server.
          const cut = error instanceof NetworkError && !(error instanceof ConnectionRefusedError);
          if (cut || (error instanceof HttpStatusError && error.status === 409)) {
            const recovered = await recoverFromCheck(this.#config, genkey, '', signal, () => {});
            if (recovered) return { text: recovered.text, stopReason: recovered.stopReason };
          }
          const hint = error instanceof HttpStatusError ? error.retryAfterMs : undefined;
          const delay =
            failover && failures <= hops ? 0 : backoffDelay(failures - (failover ? hops : 0), this.#config.retry, hint);
          await sleep(delay, signal);
        }
      }
    } catch (caught) {
      if (signal.aborted) {
        await this.abort(genkey).catch(() => false);
        throw caught instanceof AbortedError ? caught : new AbortedError(undefined, signal.reason);
      }
      throw caught;
    } finally {
      controller.dispose();
    }
  }

  async listModels(options?: StreamCallOptions): Promise<string[]> {
    const body = await this.#getJson('/api/v1/model', options?.signal);
    const result = isRecord(body) ? body['result'] : undefined;
    if (typeof result !== 'string') throw new ProtocolError('/api/v1/model: expected {"result": string}');
    return result === 'inactive' ? [] : [result];
  }

  async info(options?: StreamCallOptions): Promise<ServerInfo> {
    const [model, version, context] = await Promise.allSettled([
      this.#getJson('/api/v1/model', options?.signal),
      this.#getJson('/api/extra/version', options?.signal),
      this.#getJson('/api/extra/true_max_context_length', options?.signal),
    ]);
    if (model.status === 'rejected') throw model.reason;
    const info: ServerInfo = { api: 'kobold', raw: { model: model.value } };
    const modelName = isRecord(model.value) ? model.value['result'] : undefined;
    if (typeof modelName === 'string') info.model = modelName;
    if (version.status === 'fulfilled' && isRecord(version.value)) {
      const v = version.value;
      if (typeof v['result'] === 'string') info.server = v['result'];
      if (typeof v['version'] === 'string') info.version = v['version'];
      if (typeof v['kindling'] === 'string') info.kindling = v['kindling'];
      info.resumable = typeof v['kindling'] === 'string';
    }
    if (context.status === 'fulfilled' && isRecord(context.value) && typeof context.value['value'] === 'number') {
      info.maxContextLength = context.value['value'];
    }
    return info;
  }

  async countTokens(text: string, options?: StreamCallOptions): Promise<number> {
    const body = await this.#postJson('/api/extra/tokencount', { prompt: text }, options?.signal);
    const value = isRecord(body) ? body['value'] : undefined;
    if (typeof value !== 'number' || value < 0) throw new ProtocolError('/api/extra/tokencount: expected {"value": n}');
    return value;
  }

  /** `POST /api/extra/abort {genkey}`; the reply's booleans are the strings "true"/"false". */
  async abort(genkey: string): Promise<boolean> {
    const body = await this.#postJson('/api/extra/abort', { genkey }, AbortSignal.timeout(ABORT_REQUEST_TIMEOUT_MS));
    return isRecord(body) && (body['success'] === 'true' || body['success'] === true);
  }

  /** Whether the server is ours (resume by Last-Event-ID). Probed once; a failed probe is retried next time. */
  isKindling(signal?: AbortSignal): Promise<boolean> {
    this.#kindling ??= this.#getJson('/api/extra/version', signal).then(
      (body) => isRecord(body) && typeof body['kindling'] === 'string',
      (error: unknown) => {
        this.#kindling = undefined;
        throw error;
      },
    );
    return this.#kindling;
  }

  headers(): Record<string, string> {
    const headers: Record<string, string> = { ...this.#config.headers };
    if (this.#config.options.apiKey) headers['authorization'] = `Bearer ${this.#config.options.apiKey}`;
    return headers;
  }

  async #getJson(path: string, signal?: AbortSignal): Promise<unknown> {
    const controller = new LinkedAbortController(signal);
    try {
      return await requestJsonWithFailover(
        this.#config.fetch,
        this.#config.endpoints,
        () => ({ method: 'GET', url: `${this.#config.baseUrl}${path}`, headers: this.headers() }),
        controller.signal,
      );
    } finally {
      controller.dispose();
    }
  }

  async #postJson(path: string, body: unknown, signal?: AbortSignal): Promise<unknown> {
    const controller = new LinkedAbortController(signal);
    try {
      return await requestJsonWithFailover(
        this.#config.fetch,
        this.#config.endpoints,
        () => ({ method: 'POST', url: `${this.#config.baseUrl}${path}`, headers: this.headers(), body }),
        controller.signal,
      );
    } finally {
      controller.dispose();
    }
  }
}

/** The Kobold request body; `extra` goes last so callers can set any KoboldCpp field (dry_*, xtc_*, grammar). */
export function toKoboldBody(request: TextRequest, genkey: string): Record<string, unknown> {
  const transcript = request.messages ? renderChatTranscript(request.messages) : undefined;
  const stop = [...(request.stop ?? []), ...(transcript?.stop ?? [])];
  return definedFields({
    prompt: transcript ? transcript.prompt : (request.prompt ?? ''),
    memory: request.system,
    max_length: request.maxTokens,
    temperature: request.temperature,
    top_p: request.topP,
    top_k: request.topK,
    min_p: request.minP,
    rep_pen: request.repPen,
    rep_pen_range: request.repPenRange,
    sampler_seed: request.seed,
    stop_sequence: stop.length > 0 ? stop : undefined,
    trim_stop: true,
    genkey,
    ...request.extra,
  });
}

/** The answer of a server without `/api/extra/generate/stream`, given before any text was sent. */
function sseMissing(error: unknown): boolean {
  return (
    error instanceof HttpStatusError &&
    (error.status === 404 || error.status === 405 || error.status === 501) &&
    (error.partial?.text ?? '') === ''
  );
}

function readSyncResult(body: unknown): GenerationResult {
  const results = isRecord(body) ? body['results'] : undefined;
  const first = Array.isArray(results) ? results[0] : undefined;
  if (!isRecord(first) || typeof first['text'] !== 'string') {
    throw new ProtocolError('/api/v1/generate: expected {"results": [{"text": ...}]}');
  }
  const finish = first['finish_reason'];
  return {
    text: first['text'],
    stopReason: typeof finish === 'string' && finish !== 'null' ? finish : 'stop',
    raw: body,
  };
}
