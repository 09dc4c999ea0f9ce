/**
 * The cost of metrics and request logging per token (issue 20's goal: within 2 % of tokens/s without them). Two
 * server processes on the same model: one with `/metrics` and `--log-level info` (every request line formatted and
 * written), one with `--no-metrics --log-level warn`. They take turns, round by round, on a Kobold SSE stream that
 * the client reads; each figure is the server's own decode speed (`last_eval_speed`), and the client's wall-clock
 * tokens/s beside it. Then the observer's per-token call alone, timed in this process.
 *
 * Rough figures on a shared machine: the two sides alternate so a slow spell hits both, but the noise of a few
 * percent between rounds is of the size of the goal; the per-token figure in ns is the steadier one.
 *
 *   node --import tsx bench/observability-cost.ts [--threads 2] [--runs 6] [--tokens 128] [--model file.gguf]
 */
import { parseArgs } from 'node:util';
import { KindlingMetrics } from '../src/server/observability/kindling-metrics.ts';
import { benchModelPath, KOBOLD_SAMPLING, median } from './bench-model.ts';
import { type ServerProcess, startServerProcess } from './server-process.ts';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    runs: { type: 'string', default: '6' },
    tokens: { type: 'string', default: '128' },
    model: { type: 'string' },
  },
});
const threads = values.threads;
const runs = Number(values.runs);
const tokens = Number(values.tokens);
const modelPath = values.model ?? benchModelPath();
const common = [modelPath, '--threads', threads, '--parallel', '1'];

const on = await startServerProcess([...common, '--log-level', 'info']);
const off = await startServerProcess([...common, '--log-level', 'warn', '--no-metrics']);

async function round(server: ServerProcess, run: number): Promise<Figure> {
  const started = performance.now();
  const response = await fetch(`${server.url}/api/extra/generate/stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      prompt: `${run} Once upon a time`,
      max_length: tokens,
      ban_eos_token: true,
      sampler_seed: run + 1,
      ...KOBOLD_SAMPLING,
    }),
  });
  await response.text();
  const seconds = (performance.now() - started) / 1000;
  const perf = (await (await fetch(`${server.url}/api/extra/perf`)).json()) as { last_eval_speed: number };
  return { server: perf.last_eval_speed, client: tokens / seconds };
}

type Figure = { server: number; client: number };
const figures: Record<'on' | 'off', Figure[]> = { on: [], off: [] };
try {
  await round(on, -1);
  await round(off, -1);
  for (let run = 0; run < runs; run++) {
    // Alternating which side goes first, so neither always follows the other's cache-warm decode.
    const order = run % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const);
    for (const side of order) figures[side].push(await round(side === 'on' ? on : off, run));
  }
  const scrape = await fetch(`${on.url}/metrics`);
  if (scrape.status !== 200) throw new Error(`/metrics answered ${scrape.status} on the metrics side`);
} finally {
  await Promise.all([on.stop(), off.stop()]);
}

const med = (side: 'on' | 'off', which: 'server' | 'client') => median(figures[side].map((f) => f[which]));
for (const which of ['server', 'client'] as const) {
  const a = med('on', which);
  const b = med('off', which);
  console.log(
    `${which === 'server' ? 'server decode' : 'client wall  '} tokens/s, median of ${runs}: metrics+logs ${a.toFixed(1)}, without ${b.toFixed(1)} (${(((a - b) / b) * 100).toFixed(1)} %)`,
  );
}

// The per-token work alone: one observer call, a histogram observation with no labels.
const metrics = new KindlingMetrics();
const calls = 2_000_000;
for (let i = 0; i < 100_000; i++) metrics.tokenGap(0.01);
const started = process.hrtime.bigint();
for (let i = 0; i < calls; i++) metrics.tokenGap((i % 100) / 1000);
const ns = Number(process.hrtime.bigint() - started) / calls;
const perToken = median(figures.off.map((f) => 1e9 / f.server));
console.log(
  `per-token observer call: ${ns.toFixed(0)} ns, ${((ns / perToken) * 100).toFixed(4)} % of a token at the unobserved speed`,
);
