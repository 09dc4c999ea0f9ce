/**
 * Tokenizing a long text without tokenizing (or blocking on) all of it at once.
 *
 * node-llama-cpp's `tokenize` is synchronous native code at about 0.2–0.4 ms per KB, so a 31 MB text held the
 * event loop for seconds. Two bounded paths replace it:
 * - `tokenizeTail`: a generation keeps only the end of its prompt that fits the context, so only a tail of the
 *   text (grown geometrically until it yields enough tokens) is tokenized.
 * - `tokenizeSliced`: a token count needs every token, so the text is tokenized in slices of about
 *   `SLICE_CHARS` characters (never more than `MAX_SLICE_CHARS`), yielding to the event loop between them.
 *
 * Both cut the text only where the engine's `TokenCuts` says the tokens of the two sides, joined, are exactly the
 * tokens of the whole (see llama/tokenizer-cuts.ts for why each rule holds). Where a text offers no such cut
 * within a bounded distance (a tokenizer we cannot reason about, or a long run of characters that vocabulary
 * pieces join), the slice is cut at its bounded length anyway: blocking the server is the worse failure. Only the
 * tokens of that unsplittable run can then differ from a whole-text tokenization (merges are local, but a run
 * such as "aaaa…" can pair up differently from the cut on), and the count typically by a token or two per such cut.
 * `exact` reports which happened.
 *
 * Not a worker thread: it would need its own node-llama-cpp model (even a vocabulary-only load initialises the
 * addon's process-wide backend and log callback again from another isolate, and must follow reloads and
 * shutdown), and it saves no CPU: on cores that also decode, the work only moves, while slices already bound
 * how long anyone waits.
 */

export interface TokenizeOptions {
  special: boolean;
  addBos: boolean;
}

/** Where a text may be split so that tokenizing the two sides separately gives the tokens of the whole. */
export interface TokenCut {
  /** The right side is `text.slice(rightStart)` (the cut position, or one past a space the tokenizer re-adds). */
  rightStart: number;
  /** Leading tokens of the right side's tokenization that the whole text does not have (a re-added space). */
  dropFirst: number;
}

export interface TokenCuts {
  /** A cut with `text.slice(0, at)` on the left, or undefined where the sides' tokens could differ. */
  cutAt(text: string, at: number): TokenCut | undefined;
}

/** What these functions need of an engine (`Engine` has both). */
export interface Tokenizer {
  tokenize(text: string, options: TokenizeOptions): number[];
  /** Undefined where no cut is known to be exact: long texts are then cut at bounded lengths. */
  readonly tokenCuts?: TokenCuts | undefined;
}

/** One slice of text: ~2–5 ms of tokenizing on an idle core, so even a preempted slice stays far under the 100 ms budget. */
export const SLICE_CHARS = 8192;
/** How far a slice may grow to end on an exact cut (32 K characters: ~10–20 ms, still well under the budget). */
export const MAX_SLICE_CHARS = 4 * SLICE_CHARS;

/** Slice lengths in characters (tests use tiny ones to put many cuts in a short text). */
export interface SliceLimits {
  slice: number;
  maxSlice: number;
}
export const DEFAULT_SLICE_LIMITS: SliceLimits = { slice: SLICE_CHARS, maxSlice: MAX_SLICE_CHARS };

export interface SlicedTokens {
  /** The tokens, one array per slice: a multi-million-token list is never copied into one array. */
  chunks: number[][];
  /** Tokens in all chunks. */
  count: number;
  /** False when some cut was not provably exact (the count may differ by a token or two at each). */
  exact: boolean;
}

/** Never splits a surrogate pair: a lone half would reach the tokenizer as U+FFFD. */
function codePointBoundary(text: string, at: number): number {
  const code = text.charCodeAt(at);
  return at > 0 && at < text.length && code >= 0xdc00 && code <= 0xdfff ? at - 1 : at;
}

/** The last exact cut at or before `at` and after `floor`, scanning backward. */
function cutBefore(
  cuts: TokenCuts | undefined,
  text: string,
  at: number,
  floor: number,
): (TokenCut & { at: number }) | undefined {
  if (!cuts) return undefined;
  for (let i = at; i > floor; i--) {
    const cut = cuts.cutAt(text, i);
    if (cut) return { ...cut, at: i };
  }
  return undefined;
}

/** The first exact cut after `at` and at or before `ceiling`, scanning forward. */
function cutAfter(
  cuts: TokenCuts | undefined,
  text: string,
  at: number,
  ceiling: number,
): (TokenCut & { at: number }) | undefined {
  if (!cuts) return undefined;
  for (let i = at + 1; i <= ceiling; i++) {
    const cut = cuts.cutAt(text, i);
    if (cut) return { ...cut, at: i };
  }
  return undefined;
}

/**
 * Work that pauses between slices: each `yield` is a point where other requests may run. `yielding` drives it
 * with a turn of the event loop at each pause.
 */
type Slices<T> = Generator<void, T, void>;

async function yielding<T>(work: Slices<T>, signal: AbortSignal | undefined, yieldFirst: boolean): Promise<T> {
  signal?.throwIfAborted();
  // A long text starts in a turn of its own: the request's decoding and checks before it already took one, and
  // reading a text built by concatenation (a chat template's) first copies all of it into one flat string.
  if (yieldFirst) await new Promise((resolve) => setImmediate(resolve));
  for (let step = work.next(); ; step = work.next()) {
    if (step.done) return step.value;
    await new Promise((resolve) => setImmediate(resolve));
    signal?.throwIfAborted();
  }
}

/**
 * The tokens of `text`, tokenized slice by slice with a yield to the event loop between slices, so a huge text
 * delays other requests by one slice at most. `signal` stops it early (the client left).
 */
export function tokenizeSliced(
  tokenizer: Tokenizer,
  text: string,
  options: TokenizeOptions,
  signal?: AbortSignal,
  limits: SliceLimits = DEFAULT_SLICE_LIMITS,
): Promise<SlicedTokens> {
  return yielding(slices(tokenizer, text, options, limits, false), signal, text.length > limits.maxSlice);
}

/**
 * The slicing itself. `exactOnly`: where no exact cut is within reach, the rest of the text is tokenized in one
 * piece instead of being cut anyway (a generation's prompt must be the whole text's tokens; a count may be off
 * by one instead of blocking).
 */
function* slices(
  tokenizer: Tokenizer,
  text: string,
  options: TokenizeOptions,
  limits: SliceLimits,
  exactOnly: boolean,
): Slices<SlicedTokens> {
  const cuts = tokenizer.tokenCuts;
  const tokenize = (slice: string, sliceOptions: TokenizeOptions) => tokenizer.tokenize(slice, sliceOptions);
  if (text.length <= limits.maxSlice) {
    const tokens = tokenize(text, options);
    return { chunks: [tokens], count: tokens.length, exact: true };
  }
  const chunks: number[][] = [];
  let count = 0;
  let exact = true;
  // The first slice keeps the caller's BOS; every later one is the right side of an exact (or bounded) cut.
  let cut: TokenCut = { rightStart: 0, dropFirst: 0 };
  let start = 0;
  let first = true;
  while (true) {
    const remaining = text.length - start;
    let next: (TokenCut & { at: number }) | undefined;
    if (remaining > limits.maxSlice) {
      next =
        // Past `cut.rightStart`: a slice between two cuts is never empty (it may carry a re-added space).
        cutBefore(cuts, text, start + limits.slice, cut.rightStart) ??
        cutAfter(cuts, text, start + limits.slice, start + limits.maxSlice);
      if (!next && !exactOnly) {
        exact = false;
        const at = codePointBoundary(text, start + limits.slice);
        next = { at, rightStart: at, dropFirst: 0 };
      }
    }
    const end = next ? next.at : text.length;
    const slice = text.slice(cut.rightStart, end);
    const sliceTokens = first
      ? tokenize(slice, options)
      : tokenize(slice, { special: options.special, addBos: false }).slice(cut.dropFirst);
    chunks.push(sliceTokens);
    count += sliceTokens.length;
    if (!next) return { chunks, count, exact };
    cut = next;
    start = next.at;
    first = false;
    yield;
  }
}

/** All of a sliced tokenization in one array (for texts whose token list is small enough to hold twice). */
export function allTokens(sliced: SlicedTokens): number[] {
  return sliced.chunks.length === 1 ? (sliced.chunks[0] as number[]) : sliced.chunks.flat();
}

export interface TailTokens {
  /** The text's last tokens: at least `count` of them unless `whole`. */
  tokens: number[];
  /** The whole text was tokenized (so `tokens` is all of it). */
  whole: boolean;
  /** Characters before the tail that were never tokenized. */
  skippedChars: number;
  /** False when the tail starts at a cut that is not provably exact (tokens of the run it cut may differ). */
  exact: boolean;
}

/**
 * Tokens dropped from the front of a tail cut at an inexact place: those next to the cut. (Only a run that no
 * exact cut could split, and that vocabulary pieces join along its whole length, can differ further in.)
 */
const INEXACT_MARGIN = 16;

/**
 * The last `count` (or more) tokens of `text` (without BOS), tokenizing only a tail: it starts at 8 characters
 * per token and doubles until it yields enough tokens or reaches the start of the text. At an exact cut the
 * tail's tokens are exactly the whole text's last tokens; the work is bounded by `count`, not by the text's
 * length, and a long tail is itself tokenized in slices (at exact cuts only) that yield to other requests.
 */
export function tokenizeTail(
  tokenizer: Tokenizer,
  text: string,
  special: boolean,
  count: number,
  signal?: AbortSignal,
): Promise<TailTokens> {
  return yielding(tailSlices(tokenizer, text, special, count), signal, text.length > MAX_SLICE_CHARS);
}

function* tailSlices(tokenizer: Tokenizer, text: string, special: boolean, count: number): Slices<TailTokens> {
  const cuts = tokenizer.tokenCuts;
  const options = { special, addBos: false };
  function* tokensFrom(start: number, dropFirst: number): Slices<number[]> {
    const tokens = allTokens(yield* slices(tokenizer, text.slice(start), options, DEFAULT_SLICE_LIMITS, true));
    return dropFirst > 0 ? tokens.slice(dropFirst) : tokens;
  }
  let length = Math.max(1024, count * 8);
  while (true) {
    if (length >= text.length) return { tokens: yield* tokensFrom(0, 0), whole: true, skippedChars: 0, exact: true };
    const from = text.length - length;
    // A cut near `from` (backward up to a slice's length, then forward as far); else `from` itself, inexact.
    const cut =
      cutBefore(cuts, text, from, Math.max(0, from - SLICE_CHARS)) ??
      cutAfter(cuts, text, from, Math.min(text.length - 1, from + MAX_SLICE_CHARS));
    if (!cut) {
      const at = codePointBoundary(text, from);
      const tokens = yield* tokensFrom(at, 0);
      if (tokens.length >= count + INEXACT_MARGIN)
        return { tokens: tokens.slice(INEXACT_MARGIN), whole: false, skippedChars: at, exact: false };
    } else {
      const tokens = yield* tokensFrom(cut.rightStart, cut.dropFirst);
      if (tokens.length >= count) return { tokens, whole: false, skippedChars: cut.rightStart, exact: true };
      // The tail may have started well after `from` (a forward cut): grow from where it really started.
      length = Math.max(length, text.length - cut.at);
    }
    length *= 2;
  }
}

/** A tokenizer behind a request (an upstream server's route): each call is a round trip, so tails grow 4× at a time. */
export type AsyncTokenize = (text: string, options: TokenizeOptions) => Promise<number[]>;

/**
 * `tokenizeTail` for a tokenizer that is reached over the network and has no known cuts: a tail of 8 characters
 * per token wanted, growing 4× until it holds enough tokens, always cut inexactly and its first
 * `INEXACT_MARGIN` tokens dropped. Most prompts fit at the first try, so this is one request.
 */
export async function tokenizeTailAsync(
  tokenize: AsyncTokenize,
  text: string,
  special: boolean,
  count: number,
): Promise<TailTokens> {
  const options = { special, addBos: false };
  let length = Math.max(4096, count * 8);
  while (true) {
    if (length >= text.length)
      return { tokens: await tokenize(text, options), whole: true, skippedChars: 0, exact: true };
    const at = codePointBoundary(text, text.length - length);
    const tokens = await tokenize(text.slice(at), options);
    if (tokens.length >= count + INEXACT_MARGIN)
      return { tokens: tokens.slice(INEXACT_MARGIN), whole: false, skippedChars: at, exact: false };
    length *= 4;
  }
}
