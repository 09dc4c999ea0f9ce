import {
  AbortedError,
  ConnectionRefusedError,
  HeartbeatTimeoutError,
  HttpStatusError,
  type KindlingClientError,
  NetworkError,
  ProtocolError,
} from './client-errors.ts';
import type { GenerationResult, StreamEvent, Usage } from './client-types.ts';
import { type Endpoints, failoverDelay, isFailoverError, refusedByAll } from './endpoints.ts';
import { HeartbeatTimer } from './heartbeat-timer.ts';
import { HeldBackWatch } from './held-back-watch.ts';
import { sendRequest, toClientError } from './http-request.ts';
import { LinkedAbortController } from './linked-abort-controller.ts';
import { NdjsonReader } from './ndjson-reader.ts';
import type { AttemptState, ProviderAdapter, StreamSink } from './provider-adapter.ts';
import { backoffDelay, type RetryPolicy, sleep } from './retry-policy.ts';
import { SseReader } from './sse-reader.ts';

export interface DriverConfig {
  fetch: typeof fetch;
  retry: RetryPolicy;
  heartbeatTimeoutMs: number;
  /**
   * Arm the heartbeat from the start. Otherwise it is armed once the server has shown that it sends
   * keepalives (a comment, an `id:`, Anthropic's `ping`): KoboldCpp and plain OpenAI servers may be silent for
   * minutes while a prompt is processed, and treating that as a fault would restart working generations.
   */
  heartbeatAlways: boolean;
  /** Several base URLs: a failed attempt moves to the next one (`endpoints.ts`). */
  endpoints?: Endpoints;
}

/** How long an abort notification (Kobold `/api/extra/abort`) may delay the AbortedError. */
const ABORT_NOTIFY_TIMEOUT_MS = 3000;

/**
 * The one streaming loop every provider shares: connect, read frames through the adapter, yield events,
 * and when the connection fails decide between resuming (last event id), recovering (Kobold `/check`),
 * re-sending (nothing was delivered yet) and giving up. Failures are counted consecutively: any attempt that
 * delivers text resets the count, so a long stream survives any number of cuts as long as it progresses.
 */
export async function* driveStream(
  adapter: ProviderAdapter,
  config: DriverConfig,
  signal: AbortSignal,
): AsyncGenerator<StreamEvent, GenerationResult, undefined> {
  const state: AttemptState = { resume: false, lastEventId: undefined, text: '', sawIds: false };
  let sawKeepalive = false;
  const heartbeatExpected = () => config.heartbeatAlways || sawKeepalive || state.sawIds;
  let usage: Usage | undefined;
  let result: GenerationResult | undefined;
  let inBandError: KindlingClientError | undefined;
  let pending: StreamEvent[] = [];
  let progressed = false;
  let lastStatusKey = '';
  let currentId: string | undefined;
  let serverRetryMs: number | undefined;
  let requestSent = false;
  let resumedAfter: string | undefined;
  // Whether any attempt got an answer (even an error status): until then a refused connection means no server.
  let reachedServer = false;
  // Wakes the loop that yields what a recovery by polling reports while it runs.
  let onPending: (() => void) | undefined;
  const push = (event: StreamEvent) => {
    pending.push(event);
    onPending?.();
  };

  const sink: StreamSink = {
    text(delta) {
      if (!delta || result) return;
      state.text += delta;
      progressed = true;
      push(currentId === undefined ? { type: 'text', text: delta } : { type: 'text', text: delta, id: currentId });
    },
    usage(update) {
      usage = { ...usage, ...update };
    },
    status(status, detail) {
      // Servers repeat their status in every keepalive; the caller only needs to hear about changes.
      const key = `${status}:${detail?.queuePosition ?? ''}`;
      if (key === lastStatusKey) return;
      lastStatusKey = key;
      push(detail ? { type: 'status', status, detail } : { type: 'status', status });
    },
    finish(stopReason, raw) {
      if (result) return;
      result = { text: state.text, stopReason };
      if (usage) result.usage = usage;
      if (raw !== undefined) result.raw = raw;
      onPending?.();
    },
    fail(error) {
      inBandError ??= error;
    },
  };

  const partial = (stopReason: string): GenerationResult =>
    usage ? { text: state.text, stopReason, usage } : { text: state.text, stopReason };
  const withPartial = (error: KindlingClientError): KindlingClientError => {
    error.partial ??= partial(error instanceof AbortedError ? 'abort' : 'error');
    return error;
  };

  const makeReader = (): { push(bytes: Uint8Array): void; end(): void } => {
    if (adapter.framing === 'ndjson') return new NdjsonReader((value) => adapter.onJsonLine?.(value, sink));
    return new SseReader({
      onEvent: (event) => {
        if (event.id !== undefined && event.id !== '') {
          // Our server replays strictly after Last-Event-ID; dropping anything not after it keeps a misbehaving
          // replay from duplicating text. The floor is where this connection resumed, not the previous event:
          // other servers' ids need not increase within a connection.
          if (isNotNewer(event.id, resumedAfter)) return;
          state.sawIds = true;
          currentId = event.id;
        }
        if (event.event === 'ping') sawKeepalive = true;
        adapter.onSseEvent?.(event, sink);
        if (event.id !== undefined && event.id !== '') {
          state.lastEventId = event.id;
          // A new id is progress even without text: a resume now starts later in the log.
          progressed = true;
        }
        currentId = undefined;
      },
      onComment: (comment) => {
        sawKeepalive = true;
        adapter.onSseComment?.(comment, sink);
      },
      onRetry: (ms) => {
        serverRetryMs = ms;
      },
    });
  };

  let failures = 0;
  let completed = false;
  const urls = config.endpoints?.size ?? 1;
  const hops = urls - 1;
  const refused = new Map<string, ConnectionRefusedError>();

  /**
   * The stream was found held back by a proxy: the rest of this generation comes from the server's own record
   * (Kobold `/check`), from exactly the text already delivered, and is yielded as it arrives.
   */
  async function* continueByPolling(reason: string): AsyncGenerator<StreamEvent, GenerationResult, undefined> {
    adapter.heldBack?.degraded(reason);
    yield { type: 'status', status: 'degraded', detail: { transport: 'poll', reason } };
    lastStatusKey = 'degraded:';
    const lost = () => withPartial(new NetworkError(`the stream was held back (${reason}) and /check lost it`));
    if (!adapter.recover) throw lost();
    let settled: { ok: true; value: boolean } | { ok: false; error: unknown } | undefined;
    const done = () => {
      onPending?.();
    };
    void adapter.recover(state, sink, signal).then(
      (value) => {
        settled = { ok: true, value };
        done();
      },
      (error: unknown) => {
        settled = { ok: false, error };
        done();
      },
    );
    try {
      for (;;) {
        if (pending.length === 0 && settled === undefined) {
          await new Promise<void>((resolve) => {
            onPending = resolve;
          });
        }
        onPending = undefined;
        for (const event of pending.splice(0)) yield event;
        if (settled !== undefined && pending.length === 0) break;
      }
    } finally {
      onPending = undefined;
    }
    const outcome = settled as { ok: true; value: boolean } | { ok: false; error: unknown };
    if (!outcome.ok) {
      if (signal.aborted || outcome.error instanceof AbortedError) throw outcome.error;
      throw lost();
    }
    if (!outcome.value || !result) throw lost();
    completed = true;
    yield { type: 'finish', result };
    return result;
  }

  try {
    for (;;) {
      const attempt = new LinkedAbortController(signal);
      let heldBack: string | undefined;
      const watch = adapter.heldBack
        ? new HeldBackWatch(
            adapter.heldBack,
            attempt.signal,
            () => state.text.length,
            (reason) => {
              heldBack = reason;
              attempt.abort(new NetworkError('the stream is held back by a proxy'));
            },
          )
        : undefined;
      const heartbeat = new HeartbeatTimer(config.heartbeatTimeoutMs, () => {
        const timedOut = () => attempt.abort(new HeartbeatTimeoutError(config.heartbeatTimeoutMs));
        // Silence past the heartbeat is also what a buffering proxy looks like: ask the server before giving up.
        if (watch) void watch.lastLook().then((held) => held || timedOut());
        else timedOut();
      });
      let error: KindlingClientError | undefined;
      progressed = false;
      const attemptUrl = config.endpoints?.current ?? '';
      try {
        if (heartbeatExpected()) heartbeat.start();
        requestSent = true;
        resumedAfter = state.resume ? state.lastEventId : undefined;
        watch?.waiting();
        const response = await sendRequest(config.fetch, adapter.request(state), attempt.signal);
        reachedServer = true;
        if (!response.body) throw new ProtocolError('streaming response has no body');
        const reader = response.body.getReader();
        const frames = makeReader();
        try {
          for (;;) {
            watch?.waiting();
            const { done, value } = await reader.read();
            if (done) frames.end();
            else {
              heartbeat.touch();
              frames.push(value);
            }
            watch?.received(pending.reduce((n, event) => (event.type === 'text' ? n + 1 : n), 0));
            if (pending.length > 0) {
              // A slow consumer must not look like a silent server: the heartbeat pauses while we yield.
              heartbeat.stop();
              const out = pending;
              pending = [];
              for (const event of out) yield event;
            }
            if (inBandError) throw inBandError;
            if (result) break;
            if (heartbeatExpected()) heartbeat.start();
            if (done) break;
          }
        } finally {
          // The server ends the response right after the final event: reading its end (briefly) leaves the
          // connection reusable, where cancelling the body would close it.
          if (result) await drainBriefly(reader);
          reader.cancel().catch(() => {});
        }
        if (!result && adapter.acceptsEndWithoutFinish?.(state, sink)) {
          for (const event of pending.splice(0)) yield event;
        }
        if (result) {
          const burst = watch?.burst(state.sawIds || sawKeepalive);
          if (burst !== undefined) {
            // Too late to help this reply, which is complete; later ones poll.
            adapter.heldBack?.degraded(burst);
            yield { type: 'status', status: 'degraded', detail: { transport: 'poll', reason: burst } };
          }
          completed = true;
          yield { type: 'finish', result };
          return result;
        }
        error = new NetworkError('the stream ended before the generation finished');
      } catch (caught) {
        error = toClientError(caught, attempt.signal);
        if (error instanceof HttpStatusError) reachedServer = true;
      } finally {
        heartbeat.stop();
        watch?.stop();
        attempt.dispose();
      }
      if (heldBack !== undefined && !signal.aborted) return yield* continueByPolling(heldBack);

      if (error instanceof AbortedError || !error.retryable) throw withPartial(error);
      const failover = urls > 1 && isFailoverError(error);
      if (error instanceof ConnectionRefusedError && !reachedServer) {
        // Refused before any node answered: no server runs there. With several URLs, only once all refused.
        refused.set(attemptUrl, error);
        if (!failover || refused.size >= urls) throw withPartial(refusedByAll([...refused.values()]));
      }
      // Before canResume and recover, which ask the server: they ask the node the stream continues on.
      if (failover) config.endpoints?.failed(attemptUrl);
      if (adapter.acceptsEndWithoutFinish?.(state, sink)) {
        // Cut after the provider had already said how the generation ended (an OpenAI finish_reason before
        // the usage chunk and [DONE]): the text is complete, only trailing metadata was lost.
        for (const event of pending.splice(0)) yield event;
        if (result) {
          completed = true;
          yield { type: 'finish', result };
          return result;
        }
      }
      if (progressed) failures = 0;
      failures += 1;
      if (failures > config.retry.maxRetries + (failover ? hops : 0)) throw withPartial(error);

      const started = state.text !== '' || state.sawIds;
      const resumable = await adapter.canResume(state, signal, error).catch(() => false);
      if (resumable) state.resume = true;
      else if (started) {
        // The generation is under way but cannot be re-attached to: take what the server kept, or fail.
        if (!adapter.recover) throw withPartial(error);
        yield {
          type: 'status',
          status: 'reconnecting',
          detail: { attempt: failures, delayMs: 0, error, message: 'recovering through /check' },
        };
        lastStatusKey = 'reconnecting:';
        let recovered: boolean;
        try {
          recovered = await adapter.recover(state, sink, signal);
        } catch (recoveryError) {
          // The cut is the failure the caller needs to hear about; the recovery attempt only failed to help.
          if (signal.aborted) throw recoveryError;
          throw withPartial(error);
        }
        if (recovered) {
          for (const event of pending.splice(0)) yield event;
          if (result) {
            completed = true;
            yield { type: 'finish', result };
            return result;
          }
        }
        throw withPartial(error);
      }
      // else nothing was delivered yet, so sending the request again cannot duplicate text.

      const hint = error instanceof HttpStatusError ? error.retryAfterMs : serverRetryMs;
      const delayMs = failover
        ? failoverDelay(failures, hops, config.retry, hint)
        : backoffDelay(failures, config.retry, hint);
      yield { type: 'status', status: 'reconnecting', detail: { attempt: failures, delayMs, error } };
      lastStatusKey = 'reconnecting:';
      await sleep(delayMs, signal);
    }
  } catch (caught) {
    if (signal.aborted) {
      const aborted = caught instanceof AbortedError ? caught : new AbortedError(undefined, signal.reason);
      throw withPartial(aborted);
    }
    throw caught;
  } finally {
    if (!completed && signal.aborted && requestSent && adapter.notifyAbort) {
      // Bounded, and the timer is cleared, so a server that never answers neither blocks the caller nor keeps
      // a process alive for the whole timeout.
      const timeout = new AbortController();
      await Promise.race([
        adapter.notifyAbort().catch(() => {}),
        sleep(ABORT_NOTIFY_TIMEOUT_MS, timeout.signal).catch(() => {}),
      ]);
      timeout.abort();
    }
  }
}

/**
 * True when both ids are numbers and `id` is not after `floor`. Ours are (`4`, or `3.1` for an event inside a
 * log part's group, see part-event-ids.ts); other servers' ids are opaque.
 */
function isNotNewer(id: string, floor: string | undefined): boolean {
  if (floor === undefined || floor.trim() === '') return false;
  const a = Number(id);
  const b = Number(floor);
  return Number.isFinite(a) && Number.isFinite(b) && a <= b;
}

/** How long a finished stream's remaining bytes are awaited before its body is cancelled anyway. */
const DRAIN_MS = 200;

/** Reads a body to its end, for at most DRAIN_MS; what it reads is dropped. */
async function drainBriefly(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, DRAIN_MS);
  });
  const drained = (async () => {
    for (;;) if ((await reader.read()).done) return;
  })().catch(() => {});
  await Promise.race([drained, late]);
  clearTimeout(timer);
}
