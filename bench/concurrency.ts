/**
 * Aggregate tokens/s and time to first token with 1, 4 and 8 concurrent streaming clients: node-llama-cpp
 * driven directly with the same number of sequences, our server (its own process) with that many slots,
 * and, when given a `llama-server` binary, llama.cpp's own server with that many slots. Each level runs
 * `--runs` rounds that alternate the sides, so drift in machine load hits all of them alike; the table
 * prints medians and the ratio of the medians.
 *
 *   node --import tsx bench/concurrency.ts [--threads 2] [--levels 1,4,8] [--runs 5] [--model file.gguf]
 *     [--tokens 128] [--llama-server path/to/llama-server]
 */
import { parseArgs } from 'node:util';
import type { Token } from 'node-llama-cpp';
import { BENCH_SAMPLING, benchLlama, benchModelPath, benchPrompt, KOBOLD_SAMPLING, median } from './bench-model.ts';
import { startLlamaServer, timeLlamaServerStream } from './llama-server-peer.ts';
import { settle, startServerProcess } from './server-process.ts';
import { timeKoboldStream } from './stream-client.ts';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    levels: { type: 'string', default: '1,4,8' },
    runs: { type: 'string', default: '5' },
    model: { type: 'string' },
    tokens: { type: 'string', default: '128' },
    'llama-server': { type: 'string' },
  },
});
const threads = Number(values.threads);
const levels = (values.levels as string).split(',').map(Number);
const runs = Number(values.runs);
const generate = Number(values.tokens);
const modelPath = values.model ?? benchModelPath();
const llamaServerPath = values['llama-server'];
/** Pause before each side's round, so no side starts while another's threads still spin. */
/** Context per client: the 146-token prompt and the generated tokens fit with room to spare. */
const perClientContext = 512;

interface Round {
  aggregate: number;
  ttft: number[];
}

const llama = await benchLlama(threads);
const model = await llama.loadModel({ modelPath });
const prompt = benchPrompt((t) => model.tokenize(t), 146);
/** A different first word per round and client: no round is served from an earlier round's cached prompt. */
const promptOf = (round: number, client: number) => `${round}-${client} ${prompt}`;

async function directRounds(clients: number): Promise<(round: number) => Promise<Round>> {
  const context = await model.createContext({
    contextSize: perClientContext,
    sequences: clients,
    threads: { ideal: threads, min: threads },
    batchSize: 512,
  });
  const sequences = Array.from({ length: clients }, () => context.getSequence());
  cleanups.push(() => context.dispose());
  return async (round) => {
    const started = performance.now();
    const ttft: number[] = [];
    let total = 0;
    await Promise.all(
      sequences.map(async (sequence, i) => {
        await sequence.clearHistory();
        const tokens = [model.tokens.bos as Token, ...model.tokenize(promptOf(round, i))];
        let count = 0;
        for await (const _token of sequence.evaluate(tokens, { ...BENCH_SAMPLING, seed: round * 100 + i + 1 })) {
          if (count === 0) ttft.push(performance.now() - started);
          if (++count >= generate) break;
        }
        total += count;
      }),
    );
    return { aggregate: (total * 1000) / (performance.now() - started), ttft };
  };
}

async function kindlingRounds(clients: number): Promise<(round: number) => Promise<Round>> {
  const server = await startServerProcess([
    '--model',
    modelPath,
    '--threads',
    String(threads),
    '--parallel',
    String(clients),
    '--contextsize',
    String(perClientContext),
    '--heartbeat',
    '0',
    '--gpulayers',
    '0',
  ]);
  cleanups.push(() => server.stop());
  const perf = async () =>
    ((await (await fetch(`${server.url}/api/extra/perf`)).json()) as { tokens_generated: number }).tokens_generated;
  await timeKoboldStream(server.url, { prompt: `warm ${prompt}`, max_length: 4 });
  return async (round) => {
    const before = await perf();
    const started = performance.now();
    const timings = await Promise.all(
      Array.from({ length: clients }, (_, i) =>
        timeKoboldStream(server.url, {
          prompt: promptOf(round, i),
          max_length: generate,
          sampler_seed: round * 100 + i + 1,
          ...KOBOLD_SAMPLING,
        }),
      ),
    );
    const wall = performance.now() - started;
    return { aggregate: (((await perf()) - before) * 1000) / wall, ttft: timings.map((t) => t.firstTokenMs) };
  };
}

async function llamaServerRounds(binary: string, clients: number): Promise<(round: number) => Promise<Round>> {
  const server = await startLlamaServer(binary, {
    modelPath,
    threads,
    slots: clients,
    contextSize: perClientContext * clients,
  });
  cleanups.push(() => server.stop());
  await timeLlamaServerStream(server.url, { prompt: `warm ${prompt}`, n_predict: 4 });
  return async (round) => {
    const started = performance.now();
    const timings = await Promise.all(
      Array.from({ length: clients }, (_, i) =>
        timeLlamaServerStream(server.url, {
          prompt: promptOf(round, i),
          n_predict: generate,
          seed: round * 100 + i + 1,
          ...KOBOLD_SAMPLING,
          min_p: 0,
        }),
      ),
    );
    const wall = performance.now() - started;
    const total = timings.reduce((sum, t) => sum + t.tokens, 0);
    return { aggregate: (total * 1000) / wall, ttft: timings.map((t) => t.firstTokenMs) };
  };
}

let cleanups: Array<() => Promise<void>> = [];
const summary = (rounds: Round[]) => {
  const ttft = rounds.flatMap((r) => r.ttft);
  return { aggregate: median(rounds.map((r) => r.aggregate)), p50: median(ttft), max: Math.max(...ttft) };
};
const figure = (s: ReturnType<typeof summary>) => `${s.aggregate.toFixed(1)}`;
const latency = (s: ReturnType<typeof summary>) => `${s.p50.toFixed(0)} / ${s.max.toFixed(0)}`;

console.log(
  `model ${modelPath}; threads ${threads}; 146-token prompts, ${generate} tokens per client; ${runs} alternating rounds per level, medians`,
);
console.log(
  `| clients | direct t/s | Kindling t/s | Kindling/direct |${llamaServerPath ? ' llama-server t/s | Kindling/llama-server |' : ''} TTFT p50 / max ms: direct | Kindling |${llamaServerPath ? ' llama-server |' : ''}`,
);
console.log(`|---|---|---|---|${llamaServerPath ? '---|---|' : ''}---|---|${llamaServerPath ? '---|' : ''}`);
for (const clients of levels) {
  cleanups = [];
  const results: Round[][] = [];
  try {
    const sides = [await directRounds(clients), await kindlingRounds(clients)];
    if (llamaServerPath) sides.push(await llamaServerRounds(llamaServerPath, clients));
    for (const _ of sides) results.push([]);
    for (let round = 0; round < runs; round++) {
      for (const [side, run] of sides.entries()) {
        await settle();
        (results[side] as Round[]).push(await run(round));
      }
    }
  } finally {
    // Also when a side fails to start (a llama-server that crashes): no server is left running.
    for (const cleanup of cleanups) await cleanup();
  }
  const [d, k, l] = results.map(summary) as [
    ReturnType<typeof summary>,
    ReturnType<typeof summary>,
    ...ReturnType<typeof summary>[],
  ];
  const ratio = (a: number, b: number) => `${((a / b) * 100).toFixed(0)}%`;
  console.log(
    `| ${clients} | ${figure(d)} | ${figure(k)} | ${ratio(k.aggregate, d.aggregate)} |${l ? ` ${figure(l)} | ${ratio(k.aggregate, l.aggregate)} |` : ''} ${latency(d)} | ${latency(k)} |${l ? ` ${latency(l)} |` : ''}`,
  );
}
await model.dispose();
await llama.dispose();
