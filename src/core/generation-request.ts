import type { SamplingParams } from './sampling-params.ts';

/**
 * What every protocol decodes into. The scheduler and engine see only this, never wire JSON.
 */
export interface GenerationRequest {
  /** Text prompt; chat protocols render their template into this before submitting. */
  prompt: string;
  /** Kept at the front of the context however long the prompt is (Kobold `memory`). */
  memory: string;
  /** Upper bound on generated tokens; capped so the prompt keeps room in the context. */
  maxTokens: number;
  /** Effective context window for this request, at most the server's. */
  maxContextTokens?: number;
  /** Parse special-token text (e.g. `<|im_start|>`) in the prompt as special tokens. */
  parseSpecialTokens: boolean;
  stopStrings: readonly string[];
  /** Remove the stop string (and anything after it) from the text returned and streamed. */
  trimStop: boolean;
  /** EOS/EOT may never be sampled. */
  banEos: boolean;
  /** EOS/EOT may be sampled but does not end the generation. */
  bypassEos: boolean;
  /** Render special tokens (EOS text, control tokens) into the output text. */
  renderSpecial: boolean;
  sampling: SamplingParams;
  /** Top alternatives to record per token (0: none). */
  logprobs: number;
  /** Client-chosen id (Kobold `genkey`); generated when absent. */
  key?: string;
  /** Abort the generation when the requesting client disconnects. */
  abortOnDisconnect: boolean;
}
