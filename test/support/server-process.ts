import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sleep, withDeadline } from './deadline.ts';
import { testModelPath } from './test-model.ts';

const ROOT = join(import.meta.dirname, '..', '..');

export const DEFAULT_RSS_LIMIT_MB = 1536;

export interface ServerProcessOptions {
  /** Flags after `serve` (they follow the defaults below, so they override them). */
  args?: string[];
  modelPath?: string;
  /** `--upstream <url>` instead of a model: the server drives that one. */
  upstream?: string;
  /** SIGKILL the server once its resident memory passes this (default 1.5 GB). */
  rssLimitMb?: number;
  /** Sent with `alive()`'s probe, for a `--password` server. */
  password?: string;
  env?: Record<string, string>;
  startTimeoutMs?: number;
}

export interface StopResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  ms: number;
  /** SIGTERM did not end it within the deadline; it was SIGKILLed. */
  forced: boolean;
}

/** `1536` → `1.5 GB`, the way the watchdog's verdict names its limit. */
export function formatLimit(mb: number): string {
  return mb >= 1024 ? `${Number((mb / 1024).toFixed(2))} GB` : `${mb} MB`;
}

/** Resident memory of a process in MB from /proc (undefined once it is gone, or off Linux). */
export function processRssMb(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The real `kindling serve` as a child process, as users start it, on a tiny generated model, with a watchdog
 * that reads its RSS every 100 ms and SIGKILLs it past the limit: a request that makes the server balloon fails
 * its test with "server RSS passed 1.5 GB" instead of filling the machine. The port is the one the start line
 * reports (`--port 0`).
 */
export class KindlingProcess {
  peakRssMb = 0;
  /** Set when the watchdog killed the server. */
  rssKill?: { rssMb: number; limitMb: number };
  /** Resolves when the process exits, with when it did (`at`, epoch ms). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  private stderrTail = '';
  private stdoutText = '';
  private readonly watchdog: NodeJS.Timeout;
  private readonly killOnExit = () => this.child.kill('SIGKILL');

  private constructor(
    readonly child: ChildProcess,
    readonly limitMb: number,
    private readonly password: string | undefined,
    public url = '',
  ) {
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
    );
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-4000);
    });
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdoutText = (this.stdoutText + chunk).slice(-4000);
    });
    this.watchdog = setInterval(() => this.watch(), 100);
    this.watchdog.unref();
    // A test file that dies (or is force-exited by the runner) takes its servers with it.
    process.once('exit', this.killOnExit);
    void this.exited.then(() => {
      clearInterval(this.watchdog);
      process.off('exit', this.killOnExit);
    });
  }

  static async start(options: ServerProcessOptions = {}): Promise<KindlingProcess> {
    const source = options.upstream
      ? ['--upstream', options.upstream]
      : ['--model', options.modelPath ?? testModelPath()];
    const args = [
      'bin/kindling.js',
      'serve',
      ...source,
      '--port',
      '0',
      '--threads',
      '1',
      '--gpulayers',
      '0',
      '--contextsize',
      '512',
      '--parallel',
      '2',
      '--log-level',
      'warn',
      ...(options.args ?? []),
    ];
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...options.env },
    });
    const server = new KindlingProcess(child, options.rssLimitMb ?? DEFAULT_RSS_LIMIT_MB, options.password);
    const startTimeout = options.startTimeoutMs ?? 90_000;
    const end = Date.now() + startTimeout;
    for (;;) {
      const match = /\bat (https?:\/\/[^\s]+:\d+)/.exec(server.stdoutText);
      if (match?.[1]) {
        server.url = match[1];
        break;
      }
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(
          `kindling serve exited (${child.exitCode ?? child.signalCode}) before serving: ${server.logs()}`,
        );
      if (Date.now() > end) {
        child.kill('SIGKILL');
        throw new Error(`kindling serve did not report its address within ${startTimeout} ms: ${server.logs()}`);
      }
      await sleep(50);
    }
    return server;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The server's resident memory now, in MB. */
  rssMb(): number | undefined {
    return processRssMb(this.pid);
  }

  /** The last of its stdout and stderr, for failure messages. */
  logs(): string {
    return `stdout: ${this.stdoutText.slice(-1500).trim() || '(empty)'}; stderr: ${this.stderrTail.slice(-2500).trim() || '(empty)'}`;
  }

  /** Why the server is not fit to go on (killed for memory, exited), or undefined when it is. */
  problem(): string | undefined {
    if (this.rssKill)
      return `server RSS passed ${formatLimit(this.rssKill.limitMb)} (${Math.round(this.rssKill.rssMb)} MB); the watchdog killed it`;
    if (!this.running)
      return `server exited (code ${this.child.exitCode}, signal ${this.child.signalCode}): ${this.logs()}`;
    return undefined;
  }

  /** Throws the watchdog's verdict, or that the server died. */
  assertHealthy(): void {
    const problem = this.problem();
    if (problem) throw new Error(problem);
  }

  /**
   * The error to report for a request that failed: the watchdog's verdict or the server's exit when that is the
   * cause (an exit is waited for briefly, as a crash closes sockets just before its exit is seen), else `error`.
   */
  async explain(error: Error): Promise<Error> {
    if (this.running) await Promise.race([this.exited, sleep(1000)]);
    const problem = this.problem();
    if (problem) return new Error(`${problem} (the request saw: ${error.message})`);
    return new Error(`${error.message}; server RSS now ${Math.round(this.rssMb() ?? 0)} MB`);
  }

  headers(): Record<string, string> {
    return this.password ? { authorization: `Bearer ${this.password}` } : {};
  }

  /** A normal short generation works (within `ms`). Throws, saying what failed, when it does not. */
  async alive(ms = 5000): Promise<void> {
    this.assertHealthy();
    const started = performance.now();
    const response = await withDeadline(
      fetch(`${this.url}/api/v1/generate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...this.headers() },
        body: JSON.stringify({ prompt: 'Once upon a time', max_length: 4, sampler_seed: 1 }),
        signal: AbortSignal.timeout(ms),
      }).then(async (r) => ({ status: r.status, text: await r.text() })),
      ms,
      `a normal generation (POST /api/v1/generate, max_length 4) after ${this.describeState()}`,
    ).catch((error: Error) => {
      this.assertHealthy();
      throw error;
    });
    this.assertHealthy();
    let body: { results?: Array<{ text?: unknown }> } | undefined;
    try {
      body = JSON.parse(response.text);
    } catch {}
    if (response.status !== 200 || typeof body?.results?.[0]?.text !== 'string')
      throw new Error(
        `a normal generation failed: HTTP ${response.status} ${response.text.slice(0, 300)} (${Math.round(performance.now() - started)} ms)`,
      );
  }

  /** SIGTERM, then SIGKILL if it has not exited within `deadlineMs`: its exit code, signal and time. */
  async stop(deadlineMs = 15_000): Promise<StopResult> {
    const started = performance.now();
    if (!this.running) {
      const exit = await this.exited;
      return { ...exit, ms: 0, forced: false };
    }
    this.child.kill('SIGTERM');
    let forced = false;
    const timer = setTimeout(() => {
      forced = true;
      this.child.kill('SIGKILL');
    }, deadlineMs);
    const exit = await this.exited;
    clearTimeout(timer);
    return { ...exit, ms: Math.round(performance.now() - started), forced };
  }

  /** SIGKILL at once (a server a test broke). */
  async kill(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }

  private describeState(): string {
    const rss = this.rssMb();
    return rss === undefined ? 'the server is gone' : `RSS ${Math.round(rss)} MB`;
  }

  private watch(): void {
    const rss = this.rssMb();
    if (rss === undefined) return;
    if (rss > this.peakRssMb) this.peakRssMb = rss;
    if (rss > this.limitMb && !this.rssKill) {
      this.rssKill = { rssMb: rss, limitMb: this.limitMb };
      this.child.kill('SIGKILL');
    }
  }
}
