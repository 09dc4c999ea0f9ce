import { randomKey } from './client-config.ts';
import {
  AbortedError,
  HeartbeatTimeoutError,
  HttpStatusError,
  isRetryableStatus,
  NetworkError,
  ProtocolError,
} from './client-errors.ts';
import type {
  GenerationResult,
  RetryOptions,
  StreamCallOptions,
  StreamEvent,
  TextRequest,
  TextStream,
} from './client-types.ts';
import { Endpoints, failoverDelay } from './endpoints.ts';
import { toKoboldBody } from './kobold-client.ts';
import { backoffDelay, resolveRetryPolicy } from './retry-policy.ts';
import { TextStreamImpl } from './text-stream.ts';

/** The part of the WebSocket API we use: the browser's global, or `ws` in Node 20 (which has no global one). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: unknown) => void) | null;
  onerror: ((event: unknown) => void) | null;
}
export type WebSocketConstructorLike = new (url: string) => WebSocketLike;

export interface KindlingWsClientOptions {
  /**
   * Server root, e.g. `http://127.0.0.1:5001`; the client connects to `/api/extra/generate/ws` on it. Several
   * (nodes of a fleet) fail over: when the connection drops or cannot be made, or a node answers a start with
   * 503, the client connects to the next URL, at once the first time round, and resumes every generation there
   * from its last event id (the fleet's shared log has it).
   */
  baseUrl: string | readonly string[];
  apiKey?: string;
  /** Defaults to the global `WebSocket`. */
  WebSocket?: WebSocketConstructorLike;
  retry?: RetryOptions;
  /** No message (tokens or pong) for this long while generations run: the connection is dead, reconnect. Default 45000. */
  heartbeatTimeoutMs?: number;
}

interface Pending {
  genkey: string;
  body: Record<string, unknown>;
  /** Highest event id received: the resume point after a reconnect (0: nothing yet, replay from the start). */
  lastEventId: number;
  text: string;
  started: boolean;
  push(event: StreamEvent): void;
  finish(result: GenerationResult): void;
  fail(error: unknown): void;
}

const OPEN = 1;

/**
 * Many Kobold generations over one WebSocket to a Kindling server (`/api/extra/generate/ws`). When the
 * connection drops, it reconnects with capped backoff and resumes every running generation from its last
 * event id, so no token is lost or repeated.
 */
export class KindlingWsClient {
  readonly #options: KindlingWsClientOptions;
  readonly #endpoints: Endpoints;
  readonly #pending = new Map<string, Pending>();
  #socket: WebSocketLike | undefined;
  /** The base URL the current socket went to. */
  #socketUrl = '';
  #failures = 0;
  #watchdog: ReturnType<typeof setTimeout> | undefined;
  #pinger: ReturnType<typeof setInterval> | undefined;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(options: KindlingWsClientOptions) {
    this.#options = options;
    this.#endpoints = new Endpoints(typeof options.baseUrl === 'string' ? [options.baseUrl] : options.baseUrl);
  }

  stream(request: TextRequest, options: StreamCallOptions = {}): TextStream {
    const genkey = request.genkey ?? randomKey('KCPP');
    const body = toKoboldBody(request, genkey);
    return new TextStreamImpl((signal) => this.#run(genkey, body, signal), options.signal);
  }

  /** Closes the connection; running streams fail with a network error. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#reconnectTimer);
    this.#stopTimers();
    this.#socket?.close();
    for (const pending of this.#pending.values()) pending.fail(new NetworkError('client closed'));
  }

  async *#run(
    genkey: string,
    body: Record<string, unknown>,
    signal: AbortSignal,
  ): AsyncGenerator<StreamEvent, GenerationResult, undefined> {
    const queue: StreamEvent[] = [];
    let outcome: { result?: GenerationResult; error?: unknown } | undefined;
    let wake: (() => void) | undefined;
    const notify = () => wake?.();
    const pending: Pending = {
      genkey,
      body,
      lastEventId: 0,
      text: '',
      started: false,
      push: (event) => {
        queue.push(event);
        notify();
      },
      finish: (result) => {
        outcome ??= { result };
        notify();
      },
      fail: (error) => {
        outcome ??= { error };
        notify();
      },
    };
    const onAbort = () => {
      this.#send({ type: 'abort', id: genkey });
      pending.fail(new AbortedError({ text: pending.text, stopReason: 'abort' }, signal.reason));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    this.#pending.set(genkey, pending);
    this.#ensureConnected();
    if (this.#socket?.readyState === OPEN) this.#start(pending);
    try {
      for (;;) {
        while (queue.length > 0) yield queue.shift() as StreamEvent;
        if (outcome) {
          if (outcome.error !== undefined) {
            if (outcome.error instanceof Error && 'partial' in outcome.error) {
              (outcome.error as { partial: unknown }).partial ??= { text: pending.text, stopReason: 'error' };
            }
            throw outcome.error;
          }
          return outcome.result as GenerationResult;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.#pending.delete(genkey);
      if (this.#pending.size === 0) this.#stopTimers();
    }
  }

  #start(pending: Pending): void {
    const resume = pending.started ? { last_event_id: pending.lastEventId } : {};
    pending.started = true;
    this.#send({ type: 'start', id: pending.genkey, request: pending.body, ...resume });
  }

  #send(message: unknown): void {
    if (this.#socket?.readyState === OPEN) this.#socket.send(JSON.stringify(message));
  }

  #ensureConnected(): void {
    if (this.#socket || this.#closed || this.#reconnectTimer) return;
    const Ctor = this.#options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructorLike }).WebSocket;
    if (!Ctor) throw new ProtocolError('no WebSocket implementation: pass one as the WebSocket option');
    this.#socketUrl = this.#endpoints.current;
    const url = new URL('/api/extra/generate/ws', this.#socketUrl.replace(/^http/, 'ws'));
    if (this.#options.apiKey) url.searchParams.set('apikey', this.#options.apiKey);
    const socket = new Ctor(url.toString());
    this.#socket = socket;
    socket.onopen = () => {
      this.#armWatchdog();
      const every = Math.max(250, Math.floor(this.#heartbeatMs() / 3));
      this.#pinger = setInterval(() => this.#send({ type: 'ping' }), every);
      for (const pending of this.#pending.values()) this.#start(pending);
    };
    socket.onmessage = (event) => this.#onMessage(String(event.data));
    socket.onerror = () => {};
    socket.onclose = () => this.#onClose(socket);
  }

  #onMessage(data: string): void {
    this.#armWatchdog();
    let message: {
      type?: string;
      id?: string;
      event_id?: number;
      text?: string;
      finish_reason?: string;
      position?: number;
      status?: number;
      message?: string;
      usage?: { prompt_tokens?: number; completion_tokens?: number };
    };
    try {
      message = JSON.parse(data);
    } catch (error) {
      this.#failAll(new ProtocolError('the server sent a WebSocket message that is not JSON', error));
      return;
    }
    const pending = message.id ? this.#pending.get(message.id) : undefined;
    if (!pending) return;
    const eventId = message.event_id ?? 0;
    switch (message.type) {
      case 'token':
        // After a resume the server replays from our last id on; anything at or below it was seen already.
        if (eventId <= pending.lastEventId) return;
        pending.lastEventId = eventId;
        pending.text += message.text ?? '';
        this.#failures = 0;
        pending.push({ type: 'text', text: message.text ?? '', id: String(eventId) });
        return;
      case 'queued':
        pending.push({
          type: 'status',
          status: 'queued',
          detail: { ...(message.position !== undefined ? { queuePosition: message.position } : {}) },
        });
        return;
      case 'end':
        pending.finish({
          text: pending.text,
          stopReason: message.finish_reason ?? 'stop',
          usage: {
            ...(message.usage?.prompt_tokens !== undefined ? { promptTokens: message.usage.prompt_tokens } : {}),
            ...(message.usage?.completion_tokens !== undefined
              ? { completionTokens: message.usage.completion_tokens }
              : {}),
          },
          raw: message,
        });
        return;
      case 'error': {
        const status = message.status ?? 500;
        if (status === 503 && this.#endpoints.size > 1) {
          // This node cannot run it now (shutting down, lost Redis, queue full): move every stream to the next
          // node, where each resumes from its last event id.
          this.#socket?.close();
          return;
        }
        if (isRetryableStatus(status) && status !== 409) {
          // Busy or failed to start: try this generation again after a backoff, on the same connection.
          const delay = backoffDelay(++this.#failures, resolveRetryPolicy(this.#options.retry));
          setTimeout(() => this.#pending.has(pending.genkey) && this.#start(pending), delay);
          return;
        }
        pending.fail(new HttpStatusError({ status, providerMessage: message.message, body: message }));
      }
    }
  }

  #onClose(socket: WebSocketLike): void {
    if (this.#socket !== socket) return;
    this.#socket = undefined;
    this.#stopTimers();
    if (this.#closed || this.#pending.size === 0) return;
    const policy = resolveRetryPolicy(this.#options.retry);
    this.#failures += 1;
    const hops = this.#endpoints.size - 1;
    if (this.#failures > policy.maxRetries + hops) {
      this.#failAll(
        new NetworkError(`WebSocket closed ${this.#failures} times in a row (${this.#endpoints.urls.join(', ')})`),
      );
      return;
    }
    this.#endpoints.failed(this.#socketUrl);
    const delayMs = failoverDelay(this.#failures, hops, policy);
    for (const pending of this.#pending.values()) {
      pending.push({ type: 'status', status: 'reconnecting', detail: { attempt: this.#failures, delayMs } });
    }
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      this.#ensureConnected();
    }, delayMs);
  }

  #failAll(error: unknown): void {
    for (const pending of this.#pending.values()) pending.fail(error);
  }

  #heartbeatMs(): number {
    return this.#options.heartbeatTimeoutMs ?? 45_000;
  }

  #armWatchdog(): void {
    clearTimeout(this.#watchdog);
    const timeout = this.#heartbeatMs();
    if (timeout <= 0) return;
    this.#watchdog = setTimeout(() => {
      if (this.#pending.size === 0) return;
      for (const pending of this.#pending.values())
        pending.push({ type: 'status', status: 'reconnecting', detail: { error: new HeartbeatTimeoutError(timeout) } });
      this.#socket?.close();
    }, timeout);
  }

  #stopTimers(): void {
    clearTimeout(this.#watchdog);
    clearInterval(this.#pinger);
    this.#watchdog = undefined;
    this.#pinger = undefined;
  }
}
