import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { sleep } from './deadline.ts';
import { freePort } from './free-port.ts';

export interface RedisServer {
  /** `redis://127.0.0.1:<port>`, for `--redis`. */
  url: string;
  port: number;
  /** SIGKILL it (a crash); `start()` brings it back on the same port, empty. */
  kill(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

const INSTALL_HINT = 'redis-server is not installed: install it with `apt-get install redis-server` (.ci/run does)';

/** Debian's redis-server, on PATH or where the package puts it. */
export function findRedisServer(): string | undefined {
  for (const dir of [...(process.env['PATH'] ?? '').split(':'), '/usr/bin', '/usr/sbin', '/usr/local/bin']) {
    if (dir !== '' && existsSync(join(dir, 'redis-server'))) return join(dir, 'redis-server');
  }
  return undefined;
}

async function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('error', () => resolve(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString().startsWith('+PONG'));
    });
  });
}

/**
 * A real redis-server on a free loopback port, in the foreground, with persistence off (nothing written to
 * disk, so a restart is empty, as a crashed cache without persistence is). Throws how to install it without it.
 */
export async function startRedisServer(): Promise<RedisServer> {
  const binary = findRedisServer();
  if (binary === undefined) throw new Error(INSTALL_HINT);
  const port = await freePort();
  let child: ChildProcess | undefined;
  let stderr = '';
  const start = async () => {
    stderr = '';
    child = spawn(
      binary,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child.stderr?.on('data', (chunk) => {
      stderr += String(chunk);
    });
    for (let waited = 0; waited < 10_000; waited += 25) {
      if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}): ${stderr}`);
      if (await answersPing(port)) return;
      await sleep(25);
    }
    throw new Error(`redis-server did not answer on port ${port} within 10 s: ${stderr}`);
  };
  const stop = async (signal: NodeJS.Signals) => {
    const running = child;
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill(signal);
    await exited;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    kill: () => stop('SIGKILL'),
    start,
    close: () => stop('SIGTERM'),
  };
}
