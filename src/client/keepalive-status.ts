import type { StreamSink } from './provider-adapter.ts';

/**
 * Turns keepalive comments into statuses: our server's `: ping queued 2` while a request waits and `: ping`
 * once it runs, and OpenRouter's `: OPENROUTER PROCESSING`. A plain ping only reports `processing` after a
 * queue status, so a UI can clear "queued" the moment the server starts on the prompt, before any text.
 */
export class KeepaliveStatus {
  #queued = false;

  onComment(comment: string, sink: StreamSink): void {
    const queued = /\bqueued(?:\s+(\d+))?/i.exec(comment);
    if (queued) {
      this.#queued = true;
      sink.status('queued', queued[1] ? { queuePosition: Number(queued[1]) } : {});
    } else if (/PROCESSING/i.test(comment)) {
      sink.status('processing', { message: comment.trim() });
    } else if (this.#queued && /^\s*ping\s*$/i.test(comment)) {
      this.#queued = false;
      sink.status('processing');
    }
  }
}
