/**
 * Many concurrent streams over one HTTP/2 connection against as many HTTP/1.1 connections, both over TLS to the
 * same server: time to first token (p50, p95), tokens per second over all streams, and the server's RSS at the
 * end. Each round runs both sides, in alternating order.
 *
 *   node --import tsx bench/h2-streams.ts [--streams 64] [--tokens 32] [--parallel 8] [--threads 2] [--runs 3]
 *     [--model models/demo.gguf]
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:http2';
import { Agent, request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { median } from './bench-model.ts';
import { settle } from './server-process.ts';

const { values } = parseArgs({
  options: {
    streams: { type: 'string', default: '64' },
    tokens: { type: 'string', default: '32' },
    parallel: { type: 'string', default: '8' },
    threads: { type: 'string', default: '2' },
    runs: { type: 'string', default: '3' },
    model: { type: 'string', default: join(import.meta.dirname, '..', 'models', 'demo.gguf') },
  },
});
const streams = Number(values.streams);
const tls = join(import.meta.dirname, '..', 'test', 'fixtures', 'tls');
const ca = readFileSync(join(tls, 'localhost-cert.pem'));
const port = 5900 + Math.floor(Math.random() * 90);
const url = `https://127.0.0.1:${port}`;
const child = spawn(
  process.execPath,
  [
    'bin/kindling.js',
    'serve',
    ...['--port', String(port), '--model', values.model, '--threads', values.threads, '--parallel', values.parallel],
    ...['--queue', String(streams), '--contextsize', '8192', '--heartbeat', '0', '--log-level', 'warn'],
    ...['--tls-cert', join(tls, 'localhost-cert.pem'), '--tls-key', join(tls, 'localhost-key.pem')],
  ],
  { cwd: join(import.meta.dirname, '..'), stdio: ['ignore', 'ignore', 'inherit'] },
);
const rssMb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1]) / 1024;

const body = (i: number) =>
  JSON.stringify({ prompt: `Story ${i}:`, max_length: Number(values.tokens), sampler_seed: i, ban_eos_token: true });

interface Run {
  ttft: number[];
  tokens: number;
  ms: number;
}

/** Reads one stream's text, calling `first` at its first event. */
function collect(chunks: AsyncIterable<Buffer | string>, first: () => void): Promise<number> {
  return (async () => {
    let text = '';
    let seen = false;
    for await (const chunk of chunks) {
      text += chunk.toString();
      if (!seen && text.includes('event: message')) {
        seen = true;
        first();
      }
    }
    return text.split('event: message').length - 2; // token events, not the final one
  })();
}

async function overH2(): Promise<Run> {
  const session = connect(url, { ca });
  const started = performance.now();
  const ttft: number[] = [];
  const counts = await Promise.all(
    Array.from({ length: streams }, (_, i) => {
      const stream = session.request({
        ':method': 'POST',
        ':path': '/api/extra/generate/stream',
        'content-type': 'application/json',
      });
      stream.end(body(i));
      return collect(stream, () => ttft.push(performance.now() - started));
    }),
  );
  session.close();
  return { ttft, tokens: counts.reduce((a, b) => a + b, 0), ms: performance.now() - started };
}

async function overH1(): Promise<Run> {
  const agent = new Agent({ ca, keepAlive: true, maxSockets: streams });
  const started = performance.now();
  const ttft: number[] = [];
  const counts = await Promise.all(
    Array.from(
      { length: streams },
      (_, i) =>
        new Promise<number>((resolve, reject) => {
          const req = httpsRequest(`${url}/api/extra/generate/stream`, {
            method: 'POST',
            agent,
            headers: { 'content-type': 'application/json' },
          });
          req.on('response', (response) =>
            collect(response, () => ttft.push(performance.now() - started)).then(resolve, reject),
          );
          req.on('error', reject);
          req.end(body(i));
        }),
    ),
  );
  agent.destroy();
  return { ttft, tokens: counts.reduce((a, b) => a + b, 0), ms: performance.now() - started };
}

try {
  for (let i = 0; ; i++) {
    const ready = await new Promise<boolean>((resolve) => {
      httpsRequest(`${url}/api/extra/perf`, { ca }, (r) => resolve(r.statusCode === 200))
        .on('error', () => resolve(false))
        .end();
    });
    if (ready) break;
    if (i > 600 || child.exitCode !== null) throw new Error('the server did not start');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const results = { h2: [] as Run[], 'h1.1': [] as Run[] };
  for (let run = 0; run < Number(values.runs); run++) {
    const order = run % 2 === 0 ? (['h2', 'h1.1'] as const) : (['h1.1', 'h2'] as const);
    for (const side of order) {
      await settle();
      results[side].push(side === 'h2' ? await overH2() : await overH1());
    }
  }
  const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) * p)] ?? 0;
  console.log(`${streams} streams × ${values.tokens} tokens, ${values.parallel} slots, ${values.runs} runs (medians)`);
  console.log('side   TTFT p50 ms  TTFT p95 ms  tokens/s');
  for (const [side, runs] of Object.entries(results)) {
    const p50 = median(runs.map((r) => pct(r.ttft, 0.5)));
    const p95 = median(runs.map((r) => pct(r.ttft, 0.95)));
    const rate = median(runs.map((r) => (r.tokens * 1000) / r.ms));
    console.log(
      `${side.padEnd(6)} ${p50.toFixed(0).padStart(11)}  ${p95.toFixed(0).padStart(11)}  ${rate.toFixed(1).padStart(8)}`,
    );
  }
  console.log(`server RSS at the end: ${rssMb().toFixed(0)} MB`);
} finally {
  child.kill('SIGTERM');
}
