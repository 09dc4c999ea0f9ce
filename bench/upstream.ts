/**
 * What `--upstream` costs (issue: goal ≥ 0.95× the upstream alone): aggregate tokens/s of `--clients` concurrent
 * OpenAI `/v1/completions` streams sent to the upstream server itself, against the same streams sent to a Kindling
 * node running `--upstream <that server>/v1`. Both sides stream the same bodies through the same client; each
 * figure is the median round's completion tokens (the upstream's own `usage`) over the round's wall time, and the
 * rounds alternate between the sides.
 *
 * The upstream is llama.cpp's `llama-server` when its binary exists (`--llama-server`, default
 * /work/llama-build/bin/llama-server; nothing is downloaded or built), else a Kindling node serving the model.
 *
 *   node --import tsx bench/upstream.ts [--threads 1] [--clients 1,4] [--parallel 4] [--tokens 128]
 *     [--rounds 3] [--model file.gguf] [--llama-server path]
 */
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchModelPath, KOBOLD_SAMPLING, median } from './bench-model.ts';
import { startLlamaServer } from './llama-server-peer.ts';
import { type ServerProcess, settle, startServerProcess } from './server-process.ts';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '1' },
    clients: { type: 'string', default: '1,4' },
    parallel: { type: 'string', default: '4' },
    tokens: { type: 'string', default: '128' },
    rounds: { type: 'string', default: '3' },
    model: { type: 'string' },
    'llama-server': { type: 'string', default: '/work/llama-build/bin/llama-server' },
  },
});
const threads = Number(values.threads);
const parallel = Number(values.parallel);
const tokens = Number(values.tokens);
const rounds = Number(values.rounds);
const clientCounts = (values.clients ?? '1').split(',').map(Number);
const modelPath = resolve(values.model ?? benchModelPath());
const binary = values['llama-server'] as string;

/** One streamed completion through node:http (a light client: it shares the cores with the servers); its usage. */
function streamCompletion(baseUrl: string, body: Record<string, unknown>): Promise<number> {
  return new Promise((done, fail) => {
    const req = request(
      `${baseUrl}/v1/completions`,
      { method: 'POST', headers: { 'content-type': 'application/json' } },
      (res) => {
        res.setEncoding('utf8');
        let tail = '';
        res.on('data', (chunk: string) => {
          tail = (tail + chunk).slice(-2048);
        });
        res.on('end', () => {
          const used = /"completion_tokens":\s*(\d+)/.exec(tail);
          if (res.statusCode !== 200 || !used) fail(new Error(`HTTP ${res.statusCode}: ${tail.slice(-300)}`));
          else done(Number(used[1]));
        });
        res.on('error', fail);
      },
    );
    req.on('error', fail);
    req.end(JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }));
  });
}

async function round(url: string, clients: number, index: number): Promise<number> {
  const started = performance.now();
  const counts = await Promise.all(
    Array.from({ length: clients }, (_, i) =>
      streamCompletion(url, {
        prompt: `${index}-${i} Once upon a time, in a land far away,`,
        max_tokens: tokens,
        ignore_eos: true,
        seed: index * 100 + i + 1,
        ...KOBOLD_SAMPLING,
      }),
    ),
  );
  return (counts.reduce((sum, n) => sum + n, 0) * 1000) / (performance.now() - started);
}

const servers: ServerProcess[] = [];
try {
  const useLlama = existsSync(binary);
  const upstream = useLlama
    ? await startLlamaServer(binary, { modelPath, threads, slots: parallel, contextSize: 512 * parallel })
    : await startServerProcess([
        ...['--model', modelPath, '--threads', String(threads), '--parallel', String(parallel)],
        ...['--contextsize', '512', '--heartbeat', '0', '--gpulayers', '0', '--queue', '64'],
      ]);
  servers.push(upstream);
  const node = await startServerProcess([
    ...['--upstream', `${upstream.url}/v1`, '--parallel', String(parallel), '--heartbeat', '0', '--queue', '64'],
  ]);
  servers.push(node);
  const name = useLlama ? 'llama-server' : 'Kindling (no llama-server binary)';
  console.log(`upstream: ${name}, ${threads} thread(s), ${parallel} slots, ${tokens} tokens a stream, ${modelPath}`);
  for (const clients of clientCounts) {
    await round(upstream.url, clients, 0);
    await round(node.url, clients, 0);
    const alone: number[] = [];
    const through: number[] = [];
    for (let r = 1; r <= rounds; r++) {
      await settle();
      alone.push(await round(upstream.url, clients, r));
      await settle();
      through.push(await round(node.url, clients, r));
    }
    const a = median(alone);
    const t = median(through);
    console.log(
      `${clients} client(s): ${name} alone ${a.toFixed(1)} t/s, Kindling --upstream over it ${t.toFixed(1)} t/s: ${(t / a).toFixed(3)}×`,
    );
  }
} finally {
  for (const server of servers.reverse()) await server.stop();
}
