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
