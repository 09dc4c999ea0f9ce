/**
 * Aggregate tokens/s and time to first token with 1, 4 and 8 concurrent streaming clients: node-llama-cpp
 * driven directly with the same number of sequences, then our server (its own process) with that many
 * slots, in one run.
 *
 *   node --import tsx bench/concurrency.ts [--threads 2] [--levels 1,4,8] [--model file.gguf] [--tokens 128]
 */
import { parseArgs } from 'node:util';
import { getLlama, LlamaLogLevel, type Token } from 'node-llama-cpp';
import { benchModelPath, benchPrompt, median } from './bench-model.ts';
import { startServerProcess } from './server-process.ts';
import { timeKoboldStream } from './stream-client.ts';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    levels: { type: 'string', default: '1,4,8' },
    model: { type: 'string' },
    tokens: { type: 'string', default: '128' },
  },
});
const threads = Number(values.threads);
const levels = (values.levels as string).split(',').map(Number);
const generate = Number(values.tokens);
const modelPath = values.model ?? benchModelPath();
const sampling = { temperature: 0.7, topK: 100, topP: 0.92 };

interface Level {
  aggregate: number;
  ttftP50: number;
  ttftMax: number;
}

const llama = await getLlama({ gpu: false, maxThreads: threads, logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath });
const prompt = benchPrompt((t) => model.tokenize(t), 146);

async function direct(clients: number): Promise<Level> {
  const context = await model.createContext({
    contextSize: 512,
    sequences: clients,
    threads: { ideal: threads, min: threads },
    batchSize: 512,
  });
  const started = performance.now();
  const ttft: number[] = [];
  let total = 0;
  await Promise.all(
    Array.from({ length: clients }, async (_, i) => {
      const sequence = context.getSequence();
      const tokens = [model.tokens.bos as Token, ...model.tokenize(`${i} ${prompt}`)];
      let count = 0;
      for await (const _token of sequence.evaluate(tokens, { ...sampling, seed: i + 1 })) {
        if (count === 0) ttft.push(performance.now() - started);
        if (++count >= generate) break;
      }
      total += count;
    }),
  );
  const wall = performance.now() - started;
  await context.dispose();
  return { aggregate: (total * 1000) / wall, ttftP50: median(ttft), ttftMax: Math.max(...ttft) };
}

async function served(clients: number): Promise<Level> {
  const server = await startServerProcess([
    '--model',
    modelPath,
    '--threads',
    String(threads),
    '--parallel',
    String(clients),
    '--contextsize',
    '512',
    '--heartbeat',
    '0',
    '--gpulayers',
    '0',
  ]);
  const perf = async () =>
    ((await (await fetch(`${server.url}/api/extra/perf`)).json()) as { tokens_generated: number }).tokens_generated;
  // Warm-up (first decode allocations), as the direct side is warm from the previous rows.
  await timeKoboldStream(server.url, { prompt: `warm ${prompt}`, max_length: 4 });
  const before = await perf();
  const started = performance.now();
  const timings = await Promise.all(
    Array.from({ length: clients }, (_, i) =>
      timeKoboldStream(server.url, {
        prompt: `${i} ${prompt}`,
        max_length: generate,
        sampler_seed: i + 1,
        temperature: 0.7,
        top_k: 100,
        top_p: 0.92,
      }),
    ),
  );
  const wall = performance.now() - started;
  const total = (await perf()) - before;
  await server.stop();
  const ttft = timings.map((t) => t.firstTokenMs);
  return { aggregate: (total * 1000) / wall, ttftP50: median(ttft), ttftMax: Math.max(...ttft) };
}

console.log(
  `model ${modelPath}; threads ${threads}; 146-token prompts, ${generate} tokens per client; server in its own process with one slot per client`,
);
console.log(
  '| clients | node-llama-cpp direct: aggregate t/s | Kindling: aggregate t/s | ratio | Kindling TTFT p50 / max (ms) | direct TTFT p50 / max (ms) |',
);
console.log('|---|---|---|---|---|---|');
for (const clients of levels) {
  const d = await direct(clients);
  const s = await served(clients);
  console.log(
    `| ${clients} | ${d.aggregate.toFixed(1)} | ${s.aggregate.toFixed(1)} | ${((s.aggregate / d.aggregate) * 100).toFixed(0)}% | ${s.ttftP50.toFixed(0)} / ${s.ttftMax.toFixed(0)} | ${d.ttftP50.toFixed(0)} / ${d.ttftMax.toFixed(0)} |`,
  );
}
await model.dispose();
await llama.dispose();
