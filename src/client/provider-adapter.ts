import type { KindlingClientError } from './client-errors.ts';
import type { StatusDetail, StopReason, StreamStatus, Usage } from './client-types.ts';
import type { HeldBackSource } from './held-back-watch.ts';
import type { HttpRequest } from './http-request.ts';
import type { SseEvent } from './sse-reader.ts';

/** What an adapter reports while it reads frames; the stream driver turns these into `StreamEvent`s. */
export interface StreamSink {
  text(delta: string): void;
  usage(usage: Usage): void;
  status(status: StreamStatus, detail?: StatusDetail): void;
  /** The provider's terminal frame arrived. */
  finish(stopReason: StopReason, raw?: unknown): void;
  /** The provider sent an error in-band; the stream ends with it. */
  fail(error: KindlingClientError): void;
}

/** What the driver knows when it opens (or re-opens) the stream. */
export interface AttemptState {
  /** True when this attempt must re-attach to the running generation after `lastEventId` (our resume). */
  resume: boolean;
  /** The id of the last event that was processed, when the server sends ids. */
  lastEventId: string | undefined;
  /** Text delivered to the caller so far. */
  text: string;
  /** Whether any event of this generation carried an `id:`. */
  sawIds: boolean;
}

/**
 * One provider's streaming protocol, seen by the generic driver (`stream-driver.ts`), which owns
 * connecting, reading, heartbeat, reconnect and abort. An adapter only builds requests and interprets frames.
 */
export interface ProviderAdapter {
  readonly framing: 'sse' | 'ndjson';
  request(state: AttemptState): HttpRequest;
  onSseEvent?(event: SseEvent, sink: StreamSink): void;
  onSseComment?(comment: string, sink: StreamSink): void;
  onJsonLine?(value: unknown, sink: StreamSink): void;
  /**
   * After a failed attempt (`error`): can the stream be re-opened from `state.lastEventId` without
   * restarting the generation?
   */
  canResume(state: AttemptState, signal: AbortSignal, error: KindlingClientError): Promise<boolean>;
  /**
   * When it cannot: fetch what the server generated anyway (Kobold `/check`) and end the stream through the
   * sink. Resolves false when there is nothing to recover from.
   */
  recover?(state: AttemptState, sink: StreamSink, signal: AbortSignal): Promise<boolean>;
  /**
   * Body ended without a terminal frame. The adapter may still finish through the sink (a server that sends
   * `finish_reason` but no `[DONE]`); returns true when it did.
   */
  acceptsEndWithoutFinish?(state: AttemptState, sink: StreamSink): boolean;
  /** The caller aborted after the request went out: tell the server (Kobold `/api/extra/abort`). */
  notifyAbort?(): Promise<void>;
  /**
   * Kobold with `koboldTransport: 'auto'`: how to notice a proxy that holds the stream back
   * (`held-back-watch.ts`). When it is noticed, the driver finishes the generation through `recover` (polling
   * `/check`) and tells `degraded`, so the client polls its later generations.
   */
  heldBack?: (HeldBackSource & { degraded(reason: string): void }) | undefined;
}
