import { LinkedAbortController } from './linked-abort-controller.ts';
import { sleep } from './retry-policy.ts';

/** The server's own record of a generation (Kobold `/check` on our server). */
export interface ServerProgress {
  /** The generation is being generated now (not queued, not prompt-only, not done). */
  running: boolean;
  /** Characters of text the server has generated so far. */
  textLength: number;
}

/** What a provider offers for noticing a proxy that holds its stream back. */
export interface HeldBackSource {
  /** The interval at which the server sends heartbeats while it has nothing else to send (ms). */
  heartbeatMs: number;
  progress(signal: AbortSignal): Promise<ServerProgress>;
}

/** Silence longer than this many heartbeat intervals is more than a server that pings can leave. */
export const QUIET_FACTOR = 1.25;
/** Reads this close together are one burst: the bytes were already waiting (a fast model still takes longer a token). */
export const BURST_GAP_MS = 5;
/** After a probe saw text the stream had not delivered, how long the stream gets to deliver it (at most). */
export const MAX_GRACE_MS = 1000;

/**
 * Notices a stream that a proxy holds back (nginx `proxy_buffering`, tunnels that wait for 16 KB or the end), so
 * the client can poll instead. Our server fills every silence with a heartbeat, so a stream that is silent for
 * longer than `QUIET_FACTOR` intervals while being read has had its bytes held somewhere. That alone is not
 * proof (a network stall looks the same), so the server is asked: held back means it reports the generation
 * `running` with more text than the stream delivered, and the stream still delivers nothing for a grace of half
 * an interval (at most `MAX_GRACE_MS`) — text in flight would have arrived by then. A slow prompt is never
 * taken for buffering: the server then reports no text yet, or `queued`.
 *
 * The clock runs only while the driver waits for bytes (the request or a read), never while it hands events to
 * a slow consumer, whose unread bytes pile up in the socket and would otherwise look held back.
 */
export class HeldBackWatch {
  readonly #source: HeldBackSource;
  readonly #delivered: () => number;
  readonly #onHeldBack: (reason: string) => void;
  readonly #controller: LinkedAbortController;
  #quietSince: number | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #probing = false;
  #stopped = false;
  // The burst rule: the quiet before the first text, and the largest gap after it.
  #quietBeforeText: number | undefined;
  #gapAfterText = 0;
  #textEvents = 0;

  constructor(
    source: HeldBackSource,
    signal: AbortSignal,
    delivered: () => number,
    onHeldBack: (reason: string) => void,
  ) {
    this.#source = source;
    this.#delivered = delivered;
    this.#onHeldBack = onHeldBack;
    this.#controller = new LinkedAbortController(signal);
  }

  get quietMs(): number {
    return this.#source.heartbeatMs * QUIET_FACTOR;
  }

  get graceMs(): number {
    return Math.min(MAX_GRACE_MS, this.#source.heartbeatMs / 2);
  }

  /** The driver awaits the request or a read: the silence clock runs from now (or keeps running). */
  waiting(): void {
    if (this.#stopped) return;
    this.#quietSince ??= Date.now();
    this.#schedule(this.quietMs - (Date.now() - this.#quietSince));
  }

  /** A read returned bytes, carrying `textEvents` text events. */
  received(textEvents: number): void {
    const quiet = this.#quietSince === undefined ? 0 : Date.now() - this.#quietSince;
    this.#quietSince = undefined;
    this.#clearTimer();
    if (this.#quietBeforeText === undefined) {
      if (textEvents > 0) this.#quietBeforeText = quiet;
    } else {
      this.#gapAfterText = Math.max(this.#gapAfterText, quiet);
    }
    this.#textEvents += textEvents;
  }

  /**
   * At the end of a stream: the reason when the whole reply came in one burst after a silence no heartbeat would
   * leave (`pings`: the server is known to send heartbeats, so its silence was not its own).
   */
  burst(pings: boolean): string | undefined {
    const quiet = this.#quietBeforeText;
    if (!pings || quiet === undefined || quiet <= this.quietMs) return undefined;
    if (this.#textEvents < 2 || this.#gapAfterText >= BURST_GAP_MS) return undefined;
    return `the whole reply arrived at once after ${Math.round(quiet)} ms of silence`;
  }

  /**
   * The heartbeat timed out: one last look at the server before the stream is called dead. Resolves true when
   * it was held back (and `onHeldBack` was called).
   */
  async lastLook(): Promise<boolean> {
    if (this.#stopped) return false;
    try {
      const progress = await this.#source.progress(this.#controller.signal);
      const delivered = this.#delivered();
      if (this.#stopped || !progress.running || progress.textLength <= delivered) return false;
      this.#heldBack(progress.textLength - delivered);
      return true;
    } catch {
      return false;
    }
  }

  stop(): void {
    this.#stopped = true;
    this.#clearTimer();
    this.#controller.abort();
    this.#controller.dispose();
  }

  #schedule(delay: number): void {
    if (this.#timer !== undefined || this.#probing) return;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        void this.#probe();
      },
      Math.max(0, delay),
    );
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #probe(): Promise<void> {
    if (this.#stopped || this.#quietSince === undefined) return;
    this.#probing = true;
    try {
      const progress = await this.#source.progress(this.#controller.signal);
      if (progress.running && progress.textLength > this.#delivered()) {
        await sleep(this.graceMs, this.#controller.signal);
        const quietFor = this.#quietSince === undefined ? 0 : Date.now() - this.#quietSince;
        const delivered = this.#delivered();
        if (!this.#stopped && quietFor >= this.graceMs && delivered < progress.textLength) {
          this.#heldBack(progress.textLength - delivered);
          return;
        }
      }
    } catch {
      // A failed probe proves nothing; the next silence asks again.
    } finally {
      this.#probing = false;
    }
    // Still silent: ask again one quiet period later.
    if (!this.#stopped && this.#quietSince !== undefined) this.#schedule(this.quietMs);
  }

  #heldBack(chars: number): void {
    const quiet = this.#quietSince === undefined ? 0 : Date.now() - this.#quietSince;
    this.stop();
    this.#onHeldBack(
      `the stream held back ${chars} characters the server had generated (silent for ${Math.round(quiet)} ms)`,
    );
  }
}
