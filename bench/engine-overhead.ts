/**
 * What our engine layer costs, without HTTP: the same model driven by node-llama-cpp's `sequence.evaluate`
 * (on a context of its own) and by `LlamaEngine.run` (its batch loop and sampler chains), in alternating runs.
 * The single-stream benchmark compares with a separate process; this one keeps everything but the engine
 * layer equal, so a regression there shows here first.
 *
 *   node --import tsx bench/engine-overhead.ts [--threads 2] [--slots 1] [--runs 10] [--tokens 128] [--model f.gguf]
 *
 * With `--slots 4` the engine runs one sequence on a four-sequence context (the server's default slot count).
 */
import { parseArgs } from 'node:util';
import type { LlamaModel, Token } from 'node-llama-cpp';
import { DEFAULT_SAMPLING } from '../src/core/sampling-params.ts';
import { LlamaEngine } from '../src/engine/llama/llama-engine.ts';
import { BENCH_SAMPLING, benchModelPath, median, singleSequenceContext } from './bench-model.ts';
import { timeDirectStream } from './direct-stream.ts';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    slots: { type: 'string', default: '1' },
    runs: { type: 'string', default: '10' },
    tokens: { type: 'string', default: '128' },
    model: { type: 'string' },
  },
});
const threads = Number(values.threads);
const generate = Number(values.tokens);
const engine = await LlamaEngine.load({
  modelPath: values.model ?? benchModelPath(),
  contextSize: 2048,
  slots: Number(values.slots),
  threads,
  gpuLayers: 0,
});
// The engine's own model (the engine decodes its context's sequences itself, so the direct side gets its own).
const model = (engine as unknown as { llamaModel: LlamaModel }).llamaModel;
const sequence = (await singleSequenceContext(model, threads)).getSequence();
const promptFor = (run: number) => engine.tokenize(`${run} Once upon a time`, { special: false, addBos: true });

async function direct(run: number): Promise<number> {
  const options = { ...BENCH_SAMPLING, seed: run + 1 };
  return (await timeDirectStream(sequence, () => promptFor(run) as Token[], options, generate)).tps;
}

async function viaEngine(run: number): Promise<number> {
  const job = {
    promptTokens: promptFor(run),
    sampling: DEFAULT_SAMPLING,
    seed: run + 1,
    banEos: true,
    yieldEog: true,
    logprobs: 0,
    maxTokens: generate,
    rewindable: false,
  };
  let first = 0;
  let count = 0;
  for await (const event of engine.run(0, job, new AbortController().signal)) {
    if (event.type !== 'token') continue;
    if (!first) first = performance.now();
    count++;
  }
  return ((count - 1) * 1000) / (performance.now() - first);
}

const d: number[] = [];
const e: number[] = [];
for (let run = 0; run <= Number(values.runs); run++) {
  const a = await direct(run);
  const b = await viaEngine(run);
  if (run === 0) continue; // warm-up
  d.push(a);
  e.push(b);
}
await engine.dispose();
const fmt = (xs: number[]) =>
  `${median(xs).toFixed(1)} (min ${Math.min(...xs).toFixed(1)}, max ${Math.max(...xs).toFixed(1)})`;
console.log(`${engine.model.engineBuild}; threads ${threads}, ${values.slots} slot(s), ${generate} tokens, medians:`);
console.log(`node-llama-cpp sequence.evaluate: ${fmt(d)} t/s`);
console.log(`LlamaEngine.run:                  ${fmt(e)} t/s`);
console.log(`paired median engine/direct: ${(median(e.map((x, i) => x / (d[i] as number))) * 100).toFixed(1)}%`);
