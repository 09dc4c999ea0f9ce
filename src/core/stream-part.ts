import type { KindlingError } from './kindling-error.ts';
import type { StopReason } from './stop-reason.ts';

export interface TokenLogprob {
  token: string;
  tokenId: number;
  logprob: number;
  top: Array<{ token: string; tokenId: number; logprob: number }>;
}

export interface Usage {
  promptTokens: number;
  /** Prompt tokens served from the slot's cache instead of being evaluated. */
  cachedPromptTokens: number;
  completionTokens: number;
  /** Prompt tokens dropped from the front to fit the context. */
  truncatedPromptTokens: number;
}

export interface Timings {
  queuedMs: number;
  promptMs: number;
  generationMs: number;
}

/**
 * The parts a generation emits, in order: optional `queued`, `start`, any number of `text-delta`,
 * then exactly one `finish` or `error`.
 */
export type StreamPart =
  | { type: 'queued'; position: number }
  | { type: 'start'; promptTokens: number; seed: number }
  | { type: 'text-delta'; text: string; tokens: readonly number[]; logprobs?: readonly TokenLogprob[] }
  | { type: 'finish'; reason: StopReason; stopString?: string; usage: Usage; timings: Timings }
  | { type: 'error'; error: KindlingError };

export type FinishPart = Extract<StreamPart, { type: 'finish' }>;
