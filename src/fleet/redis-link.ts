import { createClient } from '@redis/client';
import { KindlingError } from '../core/kindling-error.ts';

export type RedisConnection = ReturnType<typeof createClient>;

export interface RedisLinkOptions {
  url: string;
  /** Longest wait between reconnect attempts. */
  maxBackoffMs?: number;
}

/** Connection attempts at start before `connect()` gives up. */
const START_TRIES = 3;

type StateListener = (state: 'ready' | 'down', detail: string) => void;

/** Reconnect delay: doubling from 50 ms with jitter, capped, so a fleet does not reconnect in lockstep. */
export function reconnectDelayMs(retries: number, maxMs: number): number {
  const base = Math.min(maxMs, 50 * 2 ** Math.min(retries, 16));
  return Math.round(base / 2 + Math.random() * (base / 2));
}

/**
 * A node's connections to the fleet's Redis: one for commands and one for subscriptions (a subscribed
 * connection takes no other commands). A lost Redis never throws out of here: the link reconnects with backoff
 * for ever, commands fail at once with a 503 that names Redis (no offline queue, so nothing waits on a dead
 * socket), and `ready` says which it is now.
 */
export class RedisLink {
  readonly commands: RedisConnection;
  readonly subscriber: RedisConnection;
  private readonly url: string;
  private readonly listeners: StateListener[] = [];
  private lastError = '';
  private wasReady = false;

  private constructor(options: RedisLinkOptions) {
    this.url = options.url;
    const maxBackoffMs = options.maxBackoffMs ?? 2000;
    this.commands = createClient({
      url: options.url,
      disableOfflineQueue: true,
      socket: {
        connectTimeout: 2000,
        // At start a few quick tries, then `connect()` fails (a typo'd URL is one line, not a silent loop);
        // once it has been up, it retries for ever.
        reconnectStrategy: (retries, cause) =>
          this.wasReady || retries < START_TRIES ? reconnectDelayMs(retries, maxBackoffMs) : cause,
      },
    });
    this.subscriber = this.commands.duplicate();
    for (const connection of [this.commands, this.subscriber]) {
      // Without an 'error' listener the client's errors would be thrown as unhandled: the node must not crash.
      connection.on('error', (error: Error) => this.down(error.message));
      connection.on('ready', () => {
        this.wasReady = true;
        this.lastError = '';
        for (const listener of this.listeners) listener('ready', redactedUrl(this.url));
      });
    }
  }

  /** Connects both connections; fails with a 503 naming Redis when it cannot be reached at start. */
  static async connect(options: RedisLinkOptions): Promise<RedisLink> {
    const link = new RedisLink(options);
    try {
      await Promise.all([link.commands.connect(), link.subscriber.connect()]);
    } catch (error) {
      link.destroy();
      throw link.unavailable(error);
    }
    return link;
  }

  /** Told each time the link goes down or comes back (for the log); a listener must not throw. */
  watch(listener: StateListener): void {
    this.listeners.push(listener);
  }

  get ready(): boolean {
    return this.commands.isReady && this.subscriber.isReady;
  }

  /** The error a request gets while Redis is unreachable. */
  unavailable(cause?: unknown): KindlingError {
    const detail = cause instanceof Error ? cause.message : this.lastError;
    return new KindlingError(
      'unavailable',
      `The fleet's Redis at ${redactedUrl(this.url)} is unreachable${detail ? ` (${detail})` : ''}; this node reconnects on its own, retry in a few seconds.`,
    );
  }

  /** Runs `command`, turning a connection failure into `unavailable()`. */
  async run<T>(command: (redis: RedisConnection) => Promise<T>): Promise<T> {
    if (!this.commands.isReady) throw this.unavailable();
    try {
      return await command(this.commands);
    } catch (error) {
      if (!this.commands.isReady) throw this.unavailable(error);
      throw error;
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.commands.close(), this.subscriber.close()]);
  }

  private destroy(): void {
    for (const connection of [this.commands, this.subscriber]) {
      try {
        connection.destroy();
      } catch {
        // Never connected: nothing to free.
      }
    }
  }

  private down(detail: string): void {
    if (detail === this.lastError) return;
    this.lastError = detail;
    for (const listener of this.listeners) listener('down', detail);
  }
}

/** The URL without its password, for messages and logs. */
export function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return 'the configured URL';
  }
}
