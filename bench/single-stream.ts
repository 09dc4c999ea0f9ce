/**
 * Single-stream decode speed and time to first token: node-llama-cpp called directly in this process vs
 * our server (its own process, Kobold SSE over loopback), same model, threads and sampling. Runs alternate
 * (direct, server, direct, …) so drift in machine load hits both sides alike.
 *
 *   node --import tsx bench/single-stream.ts [--threads 2] [--runs 8] [--model file.gguf] [--tokens 128]
 *     [--prompt-tokens 146]
 *
 * A short prompt (`--prompt-tokens 8`) makes the first token cheap and steady, so the paired difference in
 * time to first token shows the server's own added latency instead of the prompt evaluation's noise. A third
 * side, a bare node:http server with no model (http-floor.ts), times what loopback HTTP alone costs.
 */
import { parseArgs } from 'node:util';
import type { Token } from 'node-llama-cpp';
import {
  BENCH_SAMPLING,
  benchLlama,
  benchModelPath,
  benchPrompt,
  KOBOLD_SAMPLING,
  median,
  singleSequenceContext,
} from './bench-model.ts';
import { timeDirectStream } from './direct-stream.ts';
import { startHttpFloorServer } from './http-floor.ts';
import { settle, singleSlotServerArgs, startServerProcess } from './server-process.ts';
import { timeKoboldStream } from './stream-client.ts';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    runs: { type: 'string', default: '8' },
    model: { type: 'string' },
    tokens: { type: 'string', default: '128' },
    gpulayers: { type: 'string', default: '0' },
    'prompt-tokens': { type: 'string', default: '146' },
  },
});
const threads = Number(values.threads);
const runs = Number(values.runs);
const generate = Number(values.tokens);
const modelPath = values.model ?? benchModelPath();

const llama = await benchLlama(threads);
const model = await llama.loadModel({ modelPath });
const context = await singleSequenceContext(model, threads);
const sequence = context.getSequence();
const prompt = benchPrompt((t) => model.tokenize(t), Number(values['prompt-tokens']));
const promptTokens = model.tokenize(`1 ${prompt}`).length + 1;

const direct = (run: number) =>
  timeDirectStream(
    sequence,
    () => [model.tokens.bos as Token, ...model.tokenize(`${run} ${prompt}`)],
    { ...BENCH_SAMPLING, seed: run + 1 },
    generate,
  );

const server = await startServerProcess(singleSlotServerArgs(modelPath, threads, values.gpulayers as string));
async function served(run: number): Promise<{ ttft: number; tps: number }> {
  // A different first word each run, so no run is served from the previous run's cached prompt.
  const timing = await timeKoboldStream(server.url, {
    prompt: `${run} ${prompt}`,
    max_length: generate,
    sampler_seed: run + 1,
    ...KOBOLD_SAMPLING,
  });
  return { ttft: timing.firstTokenMs, tps: timing.tokensPerSecond };
}

const floorServer = await startHttpFloorServer();
const floor = async (run: number) =>
  (await timeKoboldStream(floorServer.url, { prompt: `${run} ${prompt}` })).firstTokenMs;

const d: Array<{ ttft: number; tps: number }> = [];
const s: Array<{ ttft: number; tps: number }> = [];
const f: number[] = [];
for (let run = 0; run <= runs; run++) {
  await settle();
  const a = await direct(run);
  await settle();
  const b = await served(run);
  const c = await floor(run);
  if (run === 0) continue; // warm-up
  d.push(a);
  s.push(b);
  f.push(c);
}
await server.stop();
await floorServer.stop();
await context.dispose();
await model.dispose();
await llama.dispose();

const fmt = (xs: number[]) =>
  `${median(xs).toFixed(1)} (min ${Math.min(...xs).toFixed(1)}, max ${Math.max(...xs).toFixed(1)})`;
console.log(
  `model ${modelPath}\nthreads ${threads}, prompt ${promptTokens} tokens, ${generate} generated, ${runs} alternating runs each (+1 warm-up), medians:`,
);
console.log('| | decode tokens/s | time to first token (ms) |\n|---|---|---|');
console.log(`| node-llama-cpp direct | ${fmt(d.map((x) => x.tps))} | ${fmt(d.map((x) => x.ttft))} |`);
console.log(
  `| Kindling server (own process), Kobold SSE | ${fmt(s.map((x) => x.tps))} | ${fmt(s.map((x) => x.ttft))} |`,
);
const ratio = s.map((x, i) => x.tps / (d[i] as { tps: number }).tps);
const added = s.map((x, i) => x.ttft - (d[i] as { ttft: number }).ttft);
console.log(`| bare node:http server, no model (http-floor.ts) | | ${fmt(f)} |`);
console.log(
  `paired medians: server/direct decode ${(median(ratio) * 100).toFixed(1)}%; added time to first token ${median(added).toFixed(1)} ms, of which loopback HTTP alone ${median(f).toFixed(1)} ms (added less the floor, paired: ${median(added.map((a, i) => a - (f[i] as number))).toFixed(1)} ms)`,
);
