import type { ClientConfig } from './client-config.ts';
import { HttpStatusError, type KindlingClientError, ProtocolError, ProviderStreamError } from './client-errors.ts';
import type { HeldBackSource } from './held-back-watch.ts';
import { requestJson } from './http-request.ts';
import { KeepaliveStatus } from './keepalive-status.ts';
import { checkRequest, readCheck, recoverFromCheck } from './kobold-check-recovery.ts';
import type { AttemptState, ProviderAdapter, StreamSink } from './provider-adapter.ts';
import { isRecord, readProviderErrorBody } from './provider-error-body.ts';
import type { SseEvent } from './sse-reader.ts';

/** What the stream adapter needs from its `KoboldClient` (an interface, so the two files do not import each other). */
export interface KoboldAdapterHost {
  headers(): Record<string, string>;
  isKindling(signal?: AbortSignal): Promise<boolean>;
  abort(genkey: string): Promise<boolean>;
  /** The stream was found held back by a proxy: later generations poll. */
  degraded(reason: string): void;
}

/** The server's default `--heartbeat`, and a third of the SDK's default heartbeat timeout. */
const DEFAULT_HEARTBEAT_MS = 15_000;

/**
 * The heartbeat interval the SDK expects of the server: `heartbeatIntervalMs`, else a third of
 * `heartbeatTimeoutMs` (the timeout allows three missed heartbeats), else 15 s.
 */
export function expectedHeartbeatMs(config: ClientConfig): number {
  const interval = config.options.heartbeatIntervalMs;
  if (interval !== undefined && interval > 0) return interval;
  const timeout = config.options.heartbeatTimeoutMs;
  return timeout !== undefined && timeout > 0 ? timeout / 3 : DEFAULT_HEARTBEAT_MS;
}

/** `/api/extra/generate/stream` for one keyed generation: frames, resume, `/check` recovery and abort. */
export class KoboldStreamAdapter implements ProviderAdapter {
  readonly framing = 'sse' as const;
  readonly heldBack: (HeldBackSource & { degraded(reason: string): void }) | undefined;
  readonly #keepalive = new KeepaliveStatus();
  readonly #client: KoboldAdapterHost;
  readonly #config: ClientConfig;
  readonly #body: Record<string, unknown>;
  readonly #genkey: string;

  /** `watchHeldBack`: notice a proxy that buffers the stream and continue by polling (`koboldTransport: 'auto'`). */
  constructor(
    client: KoboldAdapterHost,
    config: ClientConfig,
    genkey: string,
    body: Record<string, unknown>,
    watchHeldBack: boolean,
  ) {
    this.#client = client;
    this.#config = config;
    this.#genkey = genkey;
    this.#body = body;
    this.heldBack = watchHeldBack
      ? {
          heartbeatMs: expectedHeartbeatMs(config),
          progress: async (signal) => {
            const check = readCheck(await requestJson(config.fetch, checkRequest(config, genkey), signal));
            // KoboldCpp's /check has no status: it never proves that the stream was held back.
            return { running: check.status === 'running', textLength: check.text.length };
          },
          degraded: (reason) => client.degraded(reason),
        }
      : undefined;
  }

  request(state: AttemptState) {
    const headers = this.#client.headers();
    headers['accept'] = 'text/event-stream';
    // Our server replays the events after this id for the same genkey instead of starting a new generation.
    // Ids start at 1, so "0" asks for everything when the cut came before the first event.
    if (state.resume) headers['last-event-id'] = state.lastEventId ?? '0';
    // A comment of 16 KiB first, for proxies that hold back a response's first bytes (a header, not `?pad=1`:
    // KoboldCpp matches its paths with the query string included).
    if (this.#config.options.padStream) headers['x-kindling-pad'] = '1';
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
