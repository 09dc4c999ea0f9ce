/**
 * Why a generation ended, kept precise inside the server; each protocol maps it onto its own vocabulary
 * in exactly one function (KoboldCpp collapses most of these into "length", which clients then misread).
 */
export type StopReason =
  /** The model produced an end-of-generation token. */
  | 'eos'
  /** A stop sequence that is a single special token (e.g. `<|im_end|>`) was generated. */
  | 'stop-token'
  /** A stop string appeared in the text. */
  | 'stop-string'
  /** `max_length` / `max_tokens` reached. */
  | 'max-tokens'
  /** The context window is full. */
  | 'context-full'
  /** Aborted by `/abort`, a client disconnect, a timeout or shutdown. */
  | 'abort'
  /** The engine failed. */
  | 'error';

/**
 * The model stopped by itself or at a stop the client asked for (EOS, an end-of-turn token, a stop string), as
 * opposed to being cut short (tokens, context, abort) or failing: the "stop" that most protocols tell apart.
 */
export function isNaturalStop(reason: StopReason): boolean {
  return reason === 'eos' || reason === 'stop-token' || reason === 'stop-string';
}
