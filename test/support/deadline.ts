/**
 * A wait that cannot hang a test file: `promise`, or a rejection after `ms` naming what was awaited. Under a
 * loaded machine (another process eating the memory or the cores) a test must fail with a message saying what
 * it waited on, never sit until the runner's 300 s timeout.
 */
export function withDeadline<T>(promise: Promise<T> | PromiseLike<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([Promise.resolve(promise), deadline]).finally(() => clearTimeout(timer));
}

/** Polls `condition` every `everyMs` until it holds, failing after `ms` with what was awaited. */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
  everyMs = 20,
): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Resolves after `ms`: a pause, not a wait on anything. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Reads `reader` until the decoded text so far satisfies `enough`, failing when the stream ends first or after
 * `ms`, naming what was awaited. Returns the text read (after `initial`).
 */
export async function readUntil(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  enough: (text: string) => boolean,
  ms: number,
  what: string,
  initial = '',
): Promise<string> {
  const decoder = new TextDecoder();
  let text = initial;
  const end = Date.now() + ms;
  while (!enough(text)) {
    const left = end - Date.now();
    if (left <= 0)
      throw new Error(`timed out after ${ms} ms waiting for ${what}; got ${JSON.stringify(text.slice(-300))}`);
    const { done, value } = await withDeadline(reader.read(), left, `${what}; got ${JSON.stringify(text.slice(-300))}`);
    if (done) throw new Error(`the stream ended before ${what}; got ${JSON.stringify(text.slice(-300))}`);
    text += decoder.decode(value, { stream: true });
  }
  return text;
}

/**
 * A fetch signal that aborts after `ms` with an error naming what was awaited (fetch and its body reads reject
 * with the signal's reason), and also when `signal` (the caller's own) aborts.
 */
export function deadlineSignal(ms: number, what: string, signal?: AbortSignal): AbortSignal {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  timer.unref();
  if (signal) {
    if (signal.aborted) controller.abort(signal.reason);
    else signal.addEventListener('abort', () => controller.abort(signal.reason), { once: true });
  }
  return controller.signal;
}

/**
 * `iterable` with a deadline on the whole iteration: `for await (const x of within(stream, ms, what))` fails
 * naming `what` instead of waiting forever on a stream that never ends. Breaking out closes the source as a
 * plain `for await` would.
 */
export async function* within<T>(iterable: AsyncIterable<T>, ms: number, what: string): AsyncGenerator<T> {
  const iterator = iterable[Symbol.asyncIterator]();
  const end = Date.now() + ms;
  let finished = false;
  try {
    for (;;) {
      const next = await withDeadline(iterator.next(), Math.max(0, end - Date.now()), what);
      if (next.done) {
        finished = true;
        return;
      }
      yield next.value;
    }
  } finally {
    if (!finished) await withDeadline(Promise.resolve(iterator.return?.()), 10_000, `${what} to close`);
  }
}
