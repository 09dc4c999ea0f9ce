import type { GenerationRequest } from '../core/generation-request.ts';
import type { StopReason } from '../core/stop-reason.ts';
import type { StreamPart } from '../core/stream-part.ts';
import { GenerationLog } from '../stream/generation-log.ts';

export type GenerationStatus = 'queued' | 'running' | 'done';

/**
 * One request's whole life: its own log, abort controller and status. Nothing about a generation lives
 * in shared globals, so one user's text or state can never appear in another's response.
 */
export class Generation {
  readonly log = new GenerationLog();
  readonly controller = new AbortController();
  readonly createdAt = Date.now();
  status: GenerationStatus = 'queued';
  startedAt?: number;
  finishedAt?: number;
  slot?: number;
  seed = 0;
  /** Why the controller was aborted, so the finish part can say so. */
  abortCause?: 'client' | 'disconnect' | 'timeout' | 'shutdown';

  constructor(
    readonly key: string,
    /** True when the client chose the key (Kobold `genkey`), false when we generated it. */
    readonly clientKey: boolean,
    readonly request: GenerationRequest,
    readonly promptTokens: readonly number[],
    readonly maxTokens: number,
    readonly truncatedTokens: number,
  ) {}

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  abort(cause: NonNullable<Generation['abortCause']>): void {
    if (this.status === 'done' || this.controller.signal.aborted) return;
    this.abortCause = cause;
    this.controller.abort();
  }

  emit(part: StreamPart): void {
    this.log.append(part);
  }

  get stopReason(): StopReason | undefined {
    const last = this.log.last;
    return last?.type === 'finish' ? last.reason : last?.type === 'error' ? 'error' : undefined;
  }
}
