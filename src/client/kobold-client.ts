import { renderChatTranscript } from './chat-transcript.ts';
import { type ClientConfig, definedFields, randomKey } from './client-config.ts';
import {
  AbortedError,
  ConnectionRefusedError,
  HttpStatusError,
  type KindlingClientError,
  NetworkError,
  ProtocolError,
  ProviderStreamError,
} from './client-errors.ts';
import type {
  GenerationResult,
  ServerInfo,
  StreamCallOptions,
  StreamEvent,
  TextClient,
  TextRequest,
  TextStream,
} from './client-types.ts';
import { requestJson, toClientError } from './http-request.ts';
import { KeepaliveStatus } from './keepalive-status.ts';
import { recoverFromCheck } from './kobold-check-recovery.ts';
import { pollGeneration, type SyncGenerate } from './kobold-poll.ts';
import { LinkedAbortController } from './linked-abort-controller.ts';
import type { AttemptState, ProviderAdapter, StreamSink } from './provider-adapter.ts';
import { isRecord, readProviderErrorBody } from './provider-error-body.ts';
import { backoffDelay, sleep } from './retry-policy.ts';
import type { SseEvent } from './sse-reader.ts';
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

  constructor(config: ClientConfig) {
    this.#config = config;
  }

  /**
   * Streams over SSE (`/api/extra/generate/stream`), or by polling when `koboldTransport` is `'poll'`. With
   * `'auto'` (default) a server that has no SSE endpoint (404, 405 or 501 before any text) is polled instead,
   * and this client polls from then on.
   */
  stream(request: TextRequest, options?: StreamCallOptions): TextStream {
    const keyed = { ...request, genkey: request.genkey ?? randomKey('KCPP') };
    const transport = this.#config.options.koboldTransport ?? 'auto';
    return new TextStreamImpl(
      (signal) =>
        transport === 'poll' || (transport === 'auto' && this.#sseMissing)
          ? this.#poll(keyed, signal)
          : this.#sse(keyed, signal, transport === 'auto'),
      options?.signal,
    );
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
      return yield* driveStream(new KoboldStreamAdapter(this, this.#config, request), this.#config, signal);
    } catch (error) {
      if (!fallback || !sseMissing(error)) throw error;
      this.#sseMissing = true;
    }
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
    let failures = 0;
    try {
      for (;;) {
        try {
          const response = await requestJson(
            this.#config.fetch,
            { method: 'POST', url: `${this.#config.baseUrl}/api/v1/generate`, headers: this.headers(), body },
            signal,
          );
          return readSyncResult(response);
        } catch (caught) {
          const error = toClientError(caught, signal);
          if (error instanceof AbortedError || !error.retryable) throw error;
          // Refused on the first try: no server runs there. Later, a restarting server may refuse for a moment.
          if (error instanceof ConnectionRefusedError && failures === 0) throw error;
          if (++failures > this.#config.retry.maxRetries) throw error;
          // A cut connection or a 409 (key still running) means the generation may be alive server-side.
          if (error instanceof NetworkError || (error instanceof HttpStatusError && error.status === 409)) {
            const recovered = await recoverFromCheck(this.#config, genkey, '', signal, () => {});
            if (recovered) return { text: recovered.text, stopReason: recovered.stopReason };
          }
          const hint = error instanceof HttpStatusError ? error.retryAfterMs : undefined;
          await sleep(backoffDelay(failures, this.#config.retry, hint), signal);
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
      return await requestJson(
        this.#config.fetch,
        { method: 'GET', url: `${this.#config.baseUrl}${path}`, headers: this.headers() },
        controller.signal,
      );
    } finally {
      controller.dispose();
    }
  }

  async #postJson(path: string, body: unknown, signal?: AbortSignal): Promise<unknown> {
    const controller = new LinkedAbortController(signal);
    try {
      return await requestJson(
        this.#config.fetch,
        { method: 'POST', url: `${this.#config.baseUrl}${path}`, headers: this.headers(), body },
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

class KoboldStreamAdapter implements ProviderAdapter {
  readonly framing = 'sse' as const;
  readonly #keepalive = new KeepaliveStatus();
  readonly #client: KoboldClient;
  readonly #config: ClientConfig;
  readonly #body: Record<string, unknown>;
  readonly #genkey: string;

  constructor(client: KoboldClient, config: ClientConfig, request: KeyedRequest) {
    this.#client = client;
    this.#config = config;
    this.#genkey = request.genkey;
    this.#body = toKoboldBody(request, request.genkey);
  }

  request(state: AttemptState) {
    const headers = this.#client.headers();
    headers['accept'] = 'text/event-stream';
    // Our server replays the events after this id for the same genkey instead of starting a new generation.
    // Ids start at 1, so "0" asks for everything when the cut came before the first event.
    if (state.resume) headers['last-event-id'] = state.lastEventId ?? '0';
    return {
      method: 'POST' as const,
      url: `${this.#config.baseUrl}/api/extra/generate/stream`,
      headers,
      body: this.#body,
    };
  }

  onSseComment(comment: string, sink: StreamSink): void {
    this.#keepalive.onComment(comment, sink);
  }

  onSseEvent(event: SseEvent, sink: StreamSink): void {
    let data: unknown;
    try {
      data = JSON.parse(event.data);
    } catch (error) {
      throw new ProtocolError(`invalid JSON in Kobold stream: ${event.data.slice(0, 120)}`, error);
    }
    if (event.event === 'error' || (isRecord(data) && (data['error'] !== undefined || data['detail'] !== undefined))) {
      const provider = readProviderErrorBody(data);
      sink.fail(
        new ProviderStreamError({ message: provider.message ?? 'unknown error', type: provider.type, raw: data }),
      );
      return;
    }
    if (event.event !== undefined && event.event !== 'message') return;
    if (!isRecord(data)) throw new ProtocolError('Kobold stream event data is not an object');
    if (typeof data['token'] === 'string') sink.text(data['token']);
    const finish = data['finish_reason'];
    // KoboldCpp 1.76 sends the string "null" on every event before the last; newer versions send JSON null.
    if (typeof finish === 'string' && finish !== 'null' && finish !== '') sink.finish(finish, data);
  }

  async canResume(state: AttemptState, signal: AbortSignal, error: KindlingClientError): Promise<boolean> {
    const mode = this.#config.options.resume ?? 'auto';
    if (mode !== 'auto') return mode;
    // Ids, or a 409 for our own genkey, only come from our server: the generation is alive there.
    if (state.sawIds || (error instanceof HttpStatusError && error.status === 409)) return true;
    // Nothing received yet: asking to resume from 0 is safe on both servers. Ours replays from the start
    // (or starts the generation if the first request never arrived); KoboldCpp ignores the header and
    // starts it, which is all a plain re-send would do.
    if (state.text === '') return true;
    // Text but no ids: KoboldCpp, unless the server says otherwise. Resuming there would restart the
    // generation and repeat the text, so only a confirmed Kindling server is resumed.
    return this.#client.isKindling(signal);
  }

  async recover(state: AttemptState, sink: StreamSink, signal: AbortSignal): Promise<boolean> {
    const outcome = await recoverFromCheck(this.#config, this.#genkey, state.text, signal, (delta) => sink.text(delta));
    if (!outcome) return false;
    sink.finish(outcome.stopReason);
    return true;
  }

  async notifyAbort(): Promise<void> {
    await this.#client.abort(this.#genkey);
  }
}
