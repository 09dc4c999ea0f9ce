/**
 * Fair-share latency: the time to first token of a key that sends one request at a time while another key keeps
 * the queue full. Two sides, alternating round by round: `fair` (an `--api-keys` server: the flood and the
 * single requests use two keys) and `fifo` (no keys: both clients are one principal, so the queue is first come,
 * first served, as before per-key scheduling). Prints p50 and p95 of the single key's TTFT on each side.
 *
 *   node --import tsx bench/fair-share.ts [--threads 2] [--parallel 1] [--flood 8] [--requests 10] [--rounds 2]
 *     [--tokens 64] [--model file.gguf]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BENCH_TMP, benchModelPath, KOBOLD_SAMPLING } from './bench-model.ts';
import { type ServerProcess, settle, startServerProcess } from './server-process.ts';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    parallel: { type: 'string', default: '1' },
    flood: { type: 'string', default: '8' },
    requests: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '2' },
    tokens: { type: 'string', default: '64' },
    model: { type: 'string' },
  },
});
const flood = Number(values.flood);
const requests = Number(values.requests);
const rounds = Number(values.rounds);
const tokens = Number(values.tokens);
const modelPath = values.model ?? benchModelPath();

const KEYS = { flood: 'sk-bench-flood-0123456789abcdef', single: 'sk-bench-single-0123456789abcdef' };
mkdirSync(BENCH_TMP, { recursive: true });
const keyFile = join(BENCH_TMP, 'fair-share-keys.json');
writeFileSync(keyFile, JSON.stringify({ keys: Object.entries(KEYS).map(([name, key]) => ({ name, key })) }));

/** Streams one generation; resolves with the ms to its first token event (the whole stream is read). */
function firstTokenMs(url: string, prompt: string, key: string | undefined): Promise<number> {
  const started = performance.now();
  let first = 0;
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (key) headers.authorization = `Bearer ${key}`;
    const req = request(`${url}/api/extra/generate/stream`, { method: 'POST', headers }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (!first && chunk.includes('"finish_reason": null')) first = performance.now();
      });
      res.on('end', () => resolve(first ? first - started : Number.NaN));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(JSON.stringify({ prompt, max_length: tokens, ban_eos_token: true, ...KOBOLD_SAMPLING }));
  });
}

/** One round: the flood keeps `flood` streams in flight; the single key sends `requests` one after another. */
async function round(server: ServerProcess, keyed: boolean, index: number): Promise<number[]> {
  let flooding = true;
  const floodKey = keyed ? KEYS.flood : undefined;
  const floods = Array.from({ length: flood }, async (_, client) => {
    for (let n = 0; flooding; n++) await firstTokenMs(server.url, `${index}-${client}-${n} flood`, floodKey);
  });
  // Let the queue fill before the first measured request.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const ttft: number[] = [];
  for (let n = 0; n < requests; n++) {
    ttft.push(await firstTokenMs(server.url, `${index}-${n} single`, keyed ? KEYS.single : undefined));
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  flooding = false;
  await Promise.all(floods);
  return ttft;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

const common = ['--model', modelPath, '--threads', String(values.threads), '--parallel', String(values.parallel)];
const flags = [...common, '--contextsize', '1024', '--heartbeat', '0', '--gpulayers', '0', '--queue', '64'];
const sides = {
  fair: await startServerProcess([...flags, '--api-keys', keyFile]),
  fifo: await startServerProcess(flags),
};
const results: Record<keyof typeof sides, number[]> = { fair: [], fifo: [] };
try {
  for (let r = 0; r < rounds; r++) {
    for (const side of r % 2 ? (['fifo', 'fair'] as const) : (['fair', 'fifo'] as const)) {
      await settle();
      results[side].push(...(await round(sides[side], side === 'fair', r)));
    }
  }
} finally {
  await Promise.all(Object.values(sides).map((side) => side.stop()));
}
console.log(
  `single-key TTFT while another key keeps ${flood} streams queued (${values.parallel} slot(s), ${tokens} tokens each)`,
);
console.log('| side | requests | p50 ms | p95 ms |');
console.log('|---|---|---|---|');
for (const [side, ttft] of Object.entries(results)) {
  console.log(`| ${side} | ${ttft.length} | ${percentile(ttft, 50).toFixed(0)} | ${percentile(ttft, 95).toFixed(0)} |`);
}
