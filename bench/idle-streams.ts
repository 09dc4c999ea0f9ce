/**
 * Server memory held by many concurrent idle SSE streams: one slot busy with a long generation, N more
 * streaming requests waiting in the queue (headers sent, heartbeats only). Prints the server process's
 * RSS before and after, and per stream.
 *
 *   node --import tsx bench/idle-streams.ts [--streams 1000,10000]
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchModelPath } from './bench-model.ts';

const { values } = parseArgs({ options: { streams: { type: 'string', default: '1000,10000' } } });
const levels = (values.streams as string).split(',').map(Number);
const root = join(import.meta.dirname, '..');
const port = 5600 + Math.floor(Math.random() * 300);
const url = `http://127.0.0.1:${port}`;
const max = Math.max(...levels);

const server = spawn(
  process.execPath,
  [
    '--import',
    'tsx',
    'src/cli/main.ts',
    'serve',
    '--model',
    benchModelPath(),
    '--port',
    String(port),
    '--threads',
    '1',
    '--parallel',
    '1',
    '--queue',
    String(max + 10),
    '--contextsize',
    '4096',
    '--log-level',
    'warn',
  ],
  { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] },
);
const rssMb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'))?.[1]) / 1024;

for (let i = 0; ; i++) {
  try {
    await fetch(`${url}/api/extra/perf`);
    break;
  } catch {
    if (i > 600) throw new Error('server did not start');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const open: AbortController[] = [];
async function openStream(body: Record<string, unknown>): Promise<void> {
  const controller = new AbortController();
  open.push(controller);
  const response = await fetch(`${url}/api/extra/generate/stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: controller.signal,
  });
  // Read (and drop) whatever arrives so the connection stays a normal, idle SSE reader.
  void response.body?.pipeTo(new WritableStream()).catch(() => {});
}

await openStream({ prompt: 'Once upon a time', max_length: 4000, ban_eos_token: true });
await new Promise((resolve) => setTimeout(resolve, 500));
const base = rssMb();
console.log(`server RSS with the model loaded and one generation running: ${base.toFixed(0)} MB`);
console.log('| idle streams | server RSS (MB) | added (MB) | per stream (KB) |\n|---|---|---|---|');
let opened = 0;
for (const level of levels) {
  while (opened < level) {
    const batch = Math.min(200, level - opened);
    await Promise.all(
      Array.from({ length: batch }, (_, i) => openStream({ prompt: `idle reader ${opened + i}`, max_length: 8 })),
    );
    opened += batch;
  }
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const perf = (await (await fetch(`${url}/api/extra/perf`)).json()) as { queue: number };
  const rss = rssMb();
  console.log(
    `| ${level} (queue ${perf.queue}) | ${rss.toFixed(0)} | ${(rss - base).toFixed(0)} | ${(((rss - base) * 1024) / level).toFixed(1)} |`,
  );
}
for (const controller of open) controller.abort();
server.kill('SIGTERM');
