import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts `kindling serve` as its own process (so the benchmark client never shares its event loop), from this
 * checkout unless `cwd` names another one.
 */
export async function startServerProcess(
  args: string[],
  options: { cwd?: string | undefined; port?: number; env?: Record<string, string> } = {},
): Promise<ServerProcess> {
  const port = options.port ?? 5700 + Math.floor(Math.random() * 200);
  const cwd = options.cwd ?? join(import.meta.dirname, '..');
  // Through the `kindling` command, as users start it (it sets up the process before the CLI loads); an older
  // checkout without that launcher runs its CLI directly.
  const entry = existsSync(join(cwd, 'bin', 'package.json'))
    ? ['bin/kindling.js']
    : ['--import', 'tsx', 'src/cli/main.ts'];
  const child = spawn(process.execPath, [...entry, 'serve', '--port', String(port), '--log-level', 'warn', ...args], {
    cwd,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, ...options.env },
  });
  return whenServing(child, `http://127.0.0.1:${port}`, '/api/extra/perf', `the server in ${cwd}`);
}

/** `KEY=VALUE,KEY2=VALUE2` (the benches' `--env-a`/`--env-b`) as an environment object. */
export function parseEnvList(spec: string): Record<string, string> {
  return Object.fromEntries(
    spec
      .split(',')
      .filter(Boolean)
      .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
  );
}

/**
 * Waits before a side's round in benches that alternate servers: a server whose decoding threads poll after
 * their last decode (llama-server's default) holds the cores into the next
 * side's round otherwise (direct's first token took twice as long right after llama-server).
 */
export function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 500));
}

/** The flags of the single-stream benchmarks: one slot, a 2,048-token context, no heartbeats. */
export function singleSlotServerArgs(modelPath: string, threads: number, gpuLayers = '0'): string[] {
  const flags = ['--model', modelPath, '--threads', String(threads), '--parallel', '1'];
  return [...flags, '--contextsize', '2048', '--heartbeat', '0', '--gpulayers', gpuLayers];
}

/** Polls `readyPath` until the child answers 200 (two minutes at most), then hands back a way to stop it. */
export async function whenServing(
  child: ChildProcess,
  url: string,
  readyPath: string,
  name: string,
): Promise<ServerProcess> {
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}${readyPath}`)).ok) break;
    } catch {}
    if (i > 1200 || child.exitCode !== null) throw new Error(`${name} did not start`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    child,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
