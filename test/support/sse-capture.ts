import { withDeadline } from './deadline.ts';
/** Reads a streaming response incrementally, so tests can act mid-stream (abort, disconnect, check). */
export class StreamCapture {
  text = '';
  done: Promise<void>;
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private listeners: Array<() => void> = [];

  constructor(readonly response: Response) {
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    this.reader = reader;
    const decoder = new TextDecoder();
    this.done = (async () => {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          this.text += decoder.decode(value, { stream: true });
          for (const listener of this.listeners.splice(0)) listener();
        }
      } catch {
        // cancelled by the test
      }
      for (const listener of this.listeners.splice(0)) listener();
    })();
  }

  /** Resolves once the received text satisfies `predicate` (or the stream ends). */
  async until(predicate: (text: string) => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let ended = false;
    void this.done.then(() => {
      ended = true;
    });
    while (!predicate(this.text)) {
      if (ended) throw new Error(`stream ended before the condition held; got: ${this.text.slice(0, 500)}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting on the stream; got: ${this.text.slice(0, 500)}`);
      await new Promise<void>((resolve) => {
        this.listeners.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  async cancel(): Promise<void> {
    await this.reader.cancel();
  }
}

export async function openStream(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<StreamCapture> {
  const response = await withDeadline(
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
      ...(signal !== undefined ? { signal } : {}),
    }),
    30_000,
    `the response headers of POST ${url}`,
  );
  return new StreamCapture(response);
}
