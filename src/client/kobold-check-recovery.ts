import type { ClientConfig } from './client-config.ts';
import { NetworkError } from './client-errors.ts';
import type { StopReason } from './client-types.ts';
import { requestJson } from './http-request.ts';
import { isRecord } from './provider-error-body.ts';
import { sleep } from './retry-policy.ts';

export interface CheckOutcome {
  text: string;
  stopReason: StopReason;
}

/** KoboldCpp has no status in `/check`: its text must stay unchanged this many polls before we call it final. */
const STABLE_POLLS = 2;
/** Consecutive failed polls tolerated before the recovery gives up. */
const MAX_POLL_FAILURES = 3;

/**
 * Recovers a generation whose connection was lost by polling `POST /api/extra/generate/check {genkey}`,
 * which returns the cumulative text so far. Our server adds `status` (`queued|running|done|unknown`) and
 * `finish_reason`, so the end is known exactly. KoboldCpp gives text only: the generation is taken as ended
 * once the text has stopped changing and `/api/extra/perf` reports the server idle, and the stop reason is
 * `disconnected` because KoboldCpp does not say how it ended. (KoboldCpp keeps generating after a
 * disconnect only for sync requests; a cut SSE stream is aborted at its next write, so there this recovers
 * the tokens produced up to that point.)
 *
 * `onText` receives the text beyond `received` as it appears. Resolves undefined when the server does not
 * know the genkey (never started, or another generation has replaced it), so the caller may send again.
 */
export async function recoverFromCheck(
  config: ClientConfig,
  genkey: string,
  received: string,
  signal: AbortSignal,
  onText: (delta: string) => void,
): Promise<CheckOutcome | undefined> {
  const pollMs = config.options.pollIntervalMs ?? 500;
  let emitted = received;
  let lastText: string | undefined;
  let stable = 0;
  let pollFailures = 0;
  for (;;) {
    let body: unknown;
    try {
      body = await requestJson(config.fetch, checkRequest(config, genkey), signal);
      pollFailures = 0;
    } catch (error) {
      if (signal.aborted || !(error instanceof NetworkError) || ++pollFailures > MAX_POLL_FAILURES) throw error;
      await sleep(pollMs, signal);
      continue;
    }
    const check = readCheck(body);
    if (check.text.startsWith(emitted) && check.text.length > emitted.length) {
      onText(check.text.slice(emitted.length));
      emitted = check.text;
    }
    if (check.status === 'done') return { text: emitted, stopReason: check.finishReason ?? 'stop' };
    if (check.status === 'unknown') return undefined;
    if (check.status === undefined) {
      stable = check.text === lastText ? stable + 1 : 0;
      lastText = check.text;
      if (stable >= STABLE_POLLS && (await serverIdle(config, signal))) {
        return check.text === '' && received === '' ? undefined : { text: emitted, stopReason: 'disconnected' };
      }
    }
    await sleep(pollMs, signal);
  }
}

export function checkRequest(config: ClientConfig, genkey: string) {
  const headers: Record<string, string> = { ...config.headers };
  if (config.options.apiKey) headers['authorization'] = `Bearer ${config.options.apiKey}`;
  return { method: 'POST' as const, url: `${config.baseUrl}/api/extra/generate/check`, headers, body: { genkey } };
}

export interface CheckBody {
  text: string;
  /** Ours only: `queued`, `running`, `done` or `unknown`. */
  status: string | undefined;
  finishReason: string | undefined;
  /** Ours only, while queued. */
  queuePosition: number | undefined;
}

/** Our extensions may sit at the top level or inside `results[0]`; both are read. */
export function readCheck(body: unknown): CheckBody {
  const top = isRecord(body) ? body : {};
  const results = top['results'];
  const first = Array.isArray(results) && isRecord(results[0]) ? results[0] : {};
  const pick = (key: string): string | undefined => {
    const value = first[key] ?? top[key];
    return typeof value === 'string' ? value : undefined;
  };
  const finish = pick('finish_reason');
  const position = first['queue_position'] ?? top['queue_position'];
  return {
    text: pick('text') ?? '',
    status: pick('status'),
    finishReason: finish === undefined || finish === 'null' ? undefined : finish,
    queuePosition: typeof position === 'number' ? position : undefined,
  };
}

async function serverIdle(config: ClientConfig, signal: AbortSignal): Promise<boolean> {
  try {
    const perf = await requestJson(config.fetch, { method: 'GET', url: `${config.baseUrl}/api/extra/perf` }, signal);
    return !isRecord(perf) || perf['idle'] !== 0;
  } catch {
    // No /perf (an older or non-KoboldCpp server): the stable text alone has to do.
    return !signal.aborted;
  }
}
