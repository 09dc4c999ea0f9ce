import { randomBytes } from 'node:crypto';
import type { GenerationRequest } from '../core/generation-request.ts';
import type { KindlingError } from '../core/kindling-error.ts';
import type { StopReason } from '../core/stop-reason.ts';
import type { StreamPart } from '../core/stream-part.ts';
import { GenerationLog } from '../stream/generation-log.ts';
import type { QueueQos } from './fair-queue.ts';

/** A request once its prompt is tokenized: everything that decides the generation but the texts. */
export type SettledRequest = Omit<GenerationRequest, 'prompt' | 'memory'>;

export type GenerationStatus = 'queued' | 'running' | 'done';

/** Who asked for a generation and through which protocol: keys are looked up only within the same owner. */
export interface GenerationOrigin {
  /** The principal (an API key's name, else the client address); see src/server/principal.ts. */
  principal: string;
  /** The wire protocol whose encoder can replay this generation (`kobold`, `openai-chat`, …). */
  protocol: string;
  /** How the request is queued and what it may spend; absent: interactive, weight 1, no caps, no quota. */
  qos?: GenerationQos;
}

/** The principal's place in the fair queue (fair-queue.ts) and, for an API key with quotas, its budget. */
export interface GenerationQos extends QueueQos {
  quota?: GenerationQuota;
}

/**
 * A key's per-minute quota as the scheduler sees it. The scheduler calls `check` before and after tokenizing
 * (both may throw a 429), `admit` once, synchronously as the generation joins the queue, and `settle` once when
 * it ends, so concurrent requests of one key never spend the same tokens twice.
 */
export interface GenerationQuota {
  /** Throws a `rate_limited` KindlingError when the key has no request or token left this minute. */
  check(): void;
  /**
   * Spends one request and reserves `promptTokens + the returned budget` tokens. Returns the most tokens the
   * generation may produce (at most `maxTokens`); throws `rate_limited` when not even one generated token fits.
   */
  admit(promptTokens: number, maxTokens: number): number;
  /** Replaces the reservation with what was used (prompt plus generated tokens; 0 for one that never ran). */
  settle(usedTokens: number): void;
}

export const INTERNAL_ORIGIN: GenerationOrigin = { principal: 'internal', protocol: 'internal' };

/** An unguessable server-issued id: 16 random bytes, base64url. */
export function newGenerationId(): string {
  return `kg-${randomBytes(16).toString('base64url')}`;
}

/**
 * One request's whole life: its own log, abort controller and status. Nothing about a generation lives
 * in shared globals, so one user's text or state can never appear in another's response.
 */
export class Generation {
  readonly log = new GenerationLog();
  readonly controller = new AbortController();
  readonly createdAt: number;
  /** Server-issued id (`x-kindling-generation`): finds this generation from any address. */
  readonly id: string;
  status: GenerationStatus = 'queued';
  startedAt?: number;
  finishedAt?: number;
  slot?: number;
  seed = 0;
  /**
   * The prompt as text, only where the engine could not tokenize it (prompt-tokens.ts `text`); dropped once the
   * engine has it, so a finished generation keeps no prompt text.
   */
  promptText?: string | undefined;
  /** Why the controller was aborted, so the finish part can say so. */
  abortCause?: 'client' | 'disconnect' | 'timeout' | 'shutdown' | 'failed';
  /** Set by `fail`: the error its end reports instead of an aborted finish. */
  failure?: KindlingError;
  /** True once a reader has been handed the final part: a same-body request after that is a new request. */
  endDelivered = false;
  private readers = 0;
  private windowTimer: NodeJS.Timeout | undefined;

  /** The client's key (Kobold `genkey`, `X-Kindling-Stream`), else the server id. */
  readonly key: string;
  /** True when the client chose the key (Kobold `genkey`), false when we generated it. */
  readonly clientKey: boolean;

  constructor(
    /** Without its texts: the prompt lives on as `promptTokens`, and a 31 MB prompt kept until the grace ends
     * would hold that much memory per finished generation. */
    readonly request: SettledRequest,
    readonly promptTokens: readonly number[],
    readonly maxTokens: number,
    readonly truncatedTokens: number,
    readonly origin: GenerationOrigin = INTERNAL_ORIGIN,
    /** How long a keyed generation with no reader keeps running for a resume or poll (ms). */
    readonly resumeWindowMs = 10_000,
    /** Identifies the decoded request, so a re-sent identical request can reattach (request-fingerprint.ts). */
    readonly fingerprint = '',
    /** A fleet job another node took in (fleet-queue.ts) keeps the id and age its front node gave it. */
    identity?: { id: string; createdAt: number },
  ) {
    this.id = identity?.id ?? newGenerationId();
    this.createdAt = identity?.createdAt ?? Date.now();
    this.key = request.key || this.id;
    this.clientKey = Boolean(request.key);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  abort(cause: NonNullable<Generation['abortCause']>): void {
    if (this.status === 'done' || this.controller.signal.aborted) return;
    this.abortCause = cause;
    this.controller.abort();
  }

  /** Stops it with an error its readers are told (it was not this node's to run, say), not an aborted finish. */
  fail(error: KindlingError): void {
    if (this.status === 'done' || this.controller.signal.aborted) return;
    this.failure = error;
    this.abort('failed');
  }

  emit(part: StreamPart): void {
    this.log.append(part);
    if (this.log.ended) this.clearWindow();
  }

  get stopReason(): StopReason | undefined {
    const last = this.log.last;
    return last?.type === 'finish' ? last.reason : last?.type === 'error' ? 'error' : undefined;
  }

  get readerCount(): number {
    return this.readers;
  }

  /**
   * A reader (stream connection, sync request, WebSocket subscriber) follows this generation until the
   * returned function is called. When the last reader leaves, an anonymous generation is aborted at once;
   * a keyed one keeps running for the resume window, then is aborted so its slot frees.
   */
  attachReader(): () => void {
    this.readers++;
    this.clearWindow();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.readers--;
      if (this.readers === 0) this.startWindow();
    };
  }

  /** A `/check` poll: proof someone still wants the result, so the resume window starts again. */
  touch(): void {
    if (this.readers === 0 && this.windowTimer) this.startWindow();
  }

  private startWindow(): void {
    this.clearWindow();
    if (this.log.ended) return;
    const window = this.request.abortOnDisconnect ? 0 : this.resumeWindowMs;
    if (window <= 0) {
      this.abort('disconnect');
      return;
    }
    this.windowTimer = setTimeout(() => {
      this.windowTimer = undefined;
      if (this.readers === 0) this.abort('disconnect');
    }, window);
    this.windowTimer.unref();
  }

  private clearWindow(): void {
    if (this.windowTimer) clearTimeout(this.windowTimer);
    this.windowTimer = undefined;
  }
}
