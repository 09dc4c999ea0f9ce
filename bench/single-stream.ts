/**
 * Single-stream decode speed and time to first token: node-llama-cpp called directly vs our server
 * (Kobold SSE over loopback), same model, same threads, same sampling, in one run.
 *
 *   node --import tsx bench/single-stream.ts [--threads 2] [--runs 5] [--model file.gguf]
 */
import { parseArgs } from 'node:util';
import { getLlama, LlamaLogLevel, type Token } from 'node-llama-cpp';
import { defaultServerConfig } from '../src/config/server-config.ts';
import { startServer } from '../src/main.ts';
import { benchModelPath, benchPrompt, median } from './bench-model.ts';
import { timeKoboldStream } from './stream-client.ts';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    runs: { type: 'string', default: '5' },
    model: { type: 'string' },
    tokens: { type: 'string', default: '128' },
  },
});
const threads = Number(values.threads);
const runs = Number(values.runs);
const generate = Number(values.tokens);
const modelPath = values.model ?? benchModelPath();
const sampling = { temperature: 0.7, topK: 100, topP: 0.92 };

async function direct(): Promise<{ ttft: number[]; tps: number[]; promptTokens: number }> {
  const llama = await getLlama({ gpu: false, maxThreads: threads, logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({
    contextSize: 2048,
    sequences: 1,
    threads: { ideal: threads, min: threads },
    batchSize: 512,
  });
  const sequence = context.getSequence();
  const prompt = benchPrompt((t) => model.tokenize(t), 146);
  const ttft: number[] = [];
  const tps: number[] = [];
  let promptTokens = 0;
  for (let run = 0; run <= runs; run++) {
    await sequence.clearHistory();
    const tokens = [model.tokens.bos as Token, ...model.tokenize(`${run} ${prompt}`)];
    promptTokens = tokens.length;
    const started = performance.now();
    let first = 0;
    let count = 0;
    for await (const _token of sequence.evaluate(tokens, { ...sampling, seed: run + 1 })) {
      if (!first) first = performance.now();
      if (++count >= generate) break;
    }
    const end = performance.now();
    if (run === 0) continue; // warm-up
    ttft.push(first - started);
    tps.push(((count - 1) * 1000) / (end - first));
  }
  await context.dispose();
  await model.dispose();
  await llama.dispose();
  return { ttft, tps, promptTokens };
}

async function server(): Promise<{ ttft: number[]; tps: number[]; events: number[] }> {
  const running = await startServer({
    ...defaultServerConfig(modelPath),
    port: 0,
    threads,
    gpuLayers: 0,
    parallel: 1,
    contextSize: 2048,
    logLevel: 'silent',
  });
  const prompt = benchPrompt((t) => running.context.engine.tokenize(t, { special: false, addBos: false }), 146);
  const ttft: number[] = [];
  const tps: number[] = [];
  const events: number[] = [];
  for (let run = 0; run <= runs; run++) {
    // A different first word each run, so no run is served from the previous run's cached prompt.
    const timing = await timeKoboldStream(running.url, {
      prompt: `${run} ${prompt}`,
      max_length: generate,
      sampler_seed: run + 1,
      temperature: 0.7,
      top_k: 100,
      top_p: 0.92,
    });
    if (run === 0) continue;
    ttft.push(timing.firstTokenMs);
    tps.push(timing.tokensPerSecond);
    events.push(timing.events);
  }
  await running.close();
  return { ttft, tps, events };
}

const d = await direct();
const s = await server();
const fmt = (xs: number[]) =>
  `${median(xs).toFixed(1)} (min ${Math.min(...xs).toFixed(1)}, max ${Math.max(...xs).toFixed(1)})`;
console.log(
  `model ${modelPath}\nthreads ${threads}, prompt ${d.promptTokens} tokens, ${generate} generated, ${runs} runs (+1 warm-up) each, medians:`,
);
console.log(`| | decode tokens/s | time to first token (ms) |\n|---|---|---|`);
console.log(`| node-llama-cpp direct | ${fmt(d.tps)} | ${fmt(d.ttft)} |`);
console.log(`| Kindling server, Kobold SSE | ${fmt(s.tps)} | ${fmt(s.ttft)} |`);
console.log(
  `server/direct decode: ${((median(s.tps) / median(d.tps)) * 100).toFixed(1)}%; added time to first token: ${(median(s.ttft) - median(d.ttft)).toFixed(1)} ms; SSE events per run: ${median(s.events)}`,
);
