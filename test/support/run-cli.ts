import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The SDK commands alone, which start in a fraction of the full CLI's time; `serve` needs FULL_CLI. */
export const SDK_CLI = 'test/support/cli-program.ts';
export const FULL_CLI = 'src/cli/main.ts';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface CliOptions {
  stdin?: string;
  /** SIGKILLed past this (default 30 s). */
  deadlineMs?: number;
  /** Sees the whole stdout so far after each chunk, and may signal the process. */
  onStdout?: (text: string, kill: (signal: NodeJS.Signals) => void) => void;
  /** Added to the environment (e.g. `NODE_EXTRA_CA_CERTS`). */
  env?: Record<string, string>;
}

/** Runs the `kindling` CLI from `entry` in the repository root, with no API key from the environment. */
export function runCli(entry: string, args: string[], options: CliOptions = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], {
      cwd: ROOT,
      env: { ...process.env, KINDLING_API_KEY: '', ...options.env },
      stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), options.deadlineMs ?? 30_000);
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      options.onStdout?.(stdout, (signal) => child.kill(signal));
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
    if (options.stdin !== undefined) child.stdin?.end(options.stdin);
  });
}
