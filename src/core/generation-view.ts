import type { GenerationRequest } from './generation-request.ts';
import type { LoggedPart } from './logged-part.ts';
import type { StopReason } from './stop-reason.ts';
import type { FinishPart, TokenLogprob } from './stream-part.ts';

/** What a protocol may read of a generation's log: the scheduler's log satisfies it. */
export interface GenerationLogView {
  /** All text emitted so far. */
  readonly text: string;
  readonly lastId: number;
  readonly ended: boolean;
  partsAfter(afterId: number): LoggedPart[];
}

/**
 * What a protocol may read of one generation (the scheduler's `Generation` satisfies it): enough to name it on
 * the wire and report on it, nothing to change it with.
 */
export interface GenerationView {
  /** The server-issued id (`kg-…`): derived wire ids (`chatcmpl-…`, `msg_…`) hash it, so a resume repeats them. */
  readonly id: string;
  readonly createdAt: number;
  readonly status: 'queued' | 'running' | 'done';
  readonly promptTokens: readonly number[];
  readonly request: Readonly<Pick<GenerationRequest, 'logprobs'>>;
  readonly stopReason: StopReason | undefined;
  readonly log: GenerationLogView;
}

/** A generation that finished (not failed), as a non-streaming response needs it. */
export interface FinishedGeneration {
  text: string;
  finish: FinishPart;
  logprobs: TokenLogprob[];
}
