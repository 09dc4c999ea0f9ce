import type { ClientConfig } from './client-config.ts';
import { AbortedError, KindlingClientError } from './client-errors.ts';
import type { GenerationResult, StreamCallOptions, StreamEvent, TextRequest } from './client-types.ts';
import { requestJson } from './http-request.ts';
import { type CheckBody, checkRequest, readCheck } from './kobold-check-recovery.ts';
import { LinkedAbortController } from './linked-abort-controller.ts';
import { sleep } from './retry-policy.ts';

/** The sync `/api/v1/generate` of the client, with its retries, `/check` recovery and server-side abort. */
export type SyncGenerate = (request: TextRequest, options: StreamCallOptions) => Promise<GenerationResult>;

type Outcome = { ok: true; value: GenerationResult } | { ok: false; error: unknown };

/**
 * Kobold generation by polling, as KoboldAI Lite does where SSE is unavailable: a sync `/api/v1/generate`
 * stays open while `POST /api/extra/generate/check {genkey}` is asked for the text so far every
 * `pollIntervalMs`. Slower to update than SSE, but it passes proxies and tunnels that buffer event streams.
 *
 * The sync request is the source of truth: it carries the retries, the `/check` recovery of a cut connection
 * and the abort on the server, and its text is the result. Snapshots only make the text visible early, so a
 * failed poll delays the preview and nothing else; a server without `/check` (a non-retryable answer) is simply
 * not polled again. A snapshot is shown only up to where a stop sequence could begin, because `trim_stop` cuts
 * the final text there and a text event cannot be taken back.
 */
export async function* pollGeneration(
  config: ClientConfig,
  generate: SyncGenerate,
  request: TextRequest & { genkey: string },
  stops: readonly string[],
  signal: AbortSignal,
): AsyncGenerator<StreamEvent, GenerationResult, undefined> {
  const pollMs = config.options.pollIntervalMs ?? 500;
  // Cancels the sleeping or in-flight poll the moment the sync request settles.
  const polling = new LinkedAbortController(signal);
  let outcome: Outcome | undefined;
  const done = generate(request, { signal })
    .then(
      (value): Outcome => ({ ok: true, value }),
      (error: unknown): Outcome => ({ ok: false, error }),
    )
    .then((settled) => {
      outcome = settled;
      polling.abort();
      return settled;
    });
  let emitted = '';
  let lastStatus = '';
  try {
    while (outcome === undefined) {
      let check: CheckBody;
      try {
        await sleep(pollMs, polling.signal);
        check = readCheck(await requestJson(config.fetch, checkRequest(config, request.genkey), polling.signal));
      } catch (error) {
        if (polling.signal.aborted) break;
        if (error instanceof KindlingClientError && !error.retryable) break;
        continue;
      }
      if (outcome !== undefined) break;
      const status = statusEvent(check);
      const statusKey = status ? `${status.status}:${status.detail?.queuePosition ?? ''}` : lastStatus;
      if (status && statusKey !== lastStatus) {
        lastStatus = statusKey;
        yield status;
      }
      const visible = check.text.slice(0, stableLength(check.text, stops));
      if (visible.length > emitted.length && visible.startsWith(emitted)) {
        const delta = visible.slice(emitted.length);
        emitted = visible;
        yield { type: 'text', text: delta };
      }
    }
    const settled = await done;
    if (!settled.ok) throw settled.error;
    const result = settled.value;
    // The sync answer is final; when trimming made it diverge from what was shown, `result.text` is what counts.
    if (result.text.length > emitted.length && result.text.startsWith(emitted)) {
      yield { type: 'text', text: result.text.slice(emitted.length) };
    }
    yield { type: 'finish', result };
    return result;
  } catch (caught) {
    const error =
      signal.aborted && !(caught instanceof AbortedError) ? new AbortedError(undefined, signal.reason) : caught;
    if (error instanceof KindlingClientError) {
      error.partial ??= { text: emitted, stopReason: error instanceof AbortedError ? 'abort' : 'error' };
    }
    throw error;
  } finally {
    polling.abort();
    polling.dispose();
    // A consumer that left early aborted the signal: wait until the sync request has told the server to stop.
    if (outcome === undefined && signal.aborted) await done;
  }
}

type StatusEvent = Extract<StreamEvent, { type: 'status' }>;

function statusEvent(check: CheckBody): StatusEvent | undefined {
  if (check.status === 'queued') {
    return check.queuePosition === undefined
      ? { type: 'status', status: 'queued' }
      : { type: 'status', status: 'queued', detail: { queuePosition: check.queuePosition } };
  }
  if (check.status === 'running') return { type: 'status', status: 'processing' };
  return undefined;
}

/**
 * How much of `text` no stop sequence can cut away: up to the first full stop sequence, and short of a tail
 * that could be the start of one.
 */
export function stableLength(text: string, stops: readonly string[]): number {
  let end = text.length;
  for (const stop of stops) {
    if (stop === '') continue;
    const at = text.indexOf(stop);
    if (at !== -1) end = Math.min(end, at);
    for (let n = Math.min(stop.length - 1, text.length); n > 0; n--) {
      if (text.endsWith(stop.slice(0, n))) {
        end = Math.min(end, text.length - n);
        break;
      }
    }
  }
  return end;
}
