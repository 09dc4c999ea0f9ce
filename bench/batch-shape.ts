/**
 * What one llama.cpp decode costs by the shape of its batch, on the node-llama-cpp binary this checkout loads
 * (prebuilt, or the local build of `npm run build:engine`): one token, N sequences × 1 token listed in id
 * order and in reverse order, and one sequence × N tokens. Every token asks for logits, as generation does.
 * The shapes alternate round by round, so drift in machine load hits all of them alike.
 *
 *   node --import tsx bench/batch-shape.ts [--threads 2] [--sequences 4] [--rounds 40] [--model file.gguf]
 *
 * It drives node-llama-cpp's native context directly (`_ctx`: initBatch, addToBatch, decodeBatch), the
 * calls its own batch loop makes, so nothing but the decode is timed.
 */
import { parseArgs } from 'node:util';
import type { Token } from 'node-llama-cpp';
import { benchLlama, benchModelPath } from './bench-model.ts';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    sequences: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '40' },
    model: { type: 'string' },
  },
});
const threads = Number(values.threads);
const n = Number(values.sequences);
const rounds = Number(values.rounds);
const modelPath = values.model ?? benchModelPath();

interface NativeContext {
  initBatch(size: number): void;
  addToBatch(sequenceId: number, firstPosition: number, tokens: Uint32Array, logitIndexes: Uint32Array): Uint32Array;
  decodeBatch(): Promise<void>;
  removeTokenCellsFromSequence(sequenceId: number, start: number, end: number): boolean;
}

const llama = await benchLlama(threads);
const model = await llama.loadModel({ modelPath });
const context = await model.createContext({
  contextSize: 2048,
  sequences: n,
  threads: { ideal: threads, min: threads },
  batchSize: 512,
});
const native = (context as unknown as { _ctx: NativeContext })._ctx;
const sequences = Array.from({ length: n }, () => context.getSequence());
// A 100-token history per sequence, as after a short prompt.
for (const sequence of sequences)
  await sequence.evaluateWithoutGeneratingNewTokens(
    Array.from({ length: 100 }, (_, i) => ((i * 7 + 3) % 1000) as Token),
  );
const next = sequences.map(() => 100);

/** One decode of `entries` (sequence id, token count), every token with logits; returns milliseconds. */
async function decode(entries: Array<[number, number]>): Promise<number> {
  native.initBatch(entries.reduce((sum, [, count]) => sum + count, 0));
  for (const [id, count] of entries) {
    const tokens = Uint32Array.from({ length: count }, (_, i) => 5 + (((next[id] as number) + i) % 900));
    native.addToBatch(
      id,
      next[id] as number,
      tokens,
      Uint32Array.from({ length: count }, (_, i) => i),
    );
    next[id] = (next[id] as number) + count;
  }
  const started = performance.now();
  await native.decodeBatch();
  return performance.now() - started;
}

const ids = Array.from({ length: n }, (_, i) => i);
const shapes: Record<string, () => Promise<number>> = {
  '1 sequence × 1 token': () => decode([[0, 1]]),
  [`${n} sequences × 1 token, ids in order`]: () => decode(ids.map((id) => [id, 1])),
  [`${n} sequences × 1 token, ids reversed`]: () => decode([...ids].reverse().map((id) => [id, 1])),
  [`1 sequence × ${n} tokens`]: () => decode([[0, n]]),
};
const times: Record<string, number[]> = Object.fromEntries(Object.keys(shapes).map((name) => [name, []]));
for (let round = 0; round < rounds; round++) {
  for (const [name, run] of Object.entries(shapes)) (times[name] as number[]).push(await run());
  // Keep every sequence inside its context.
  if (Math.max(...next) > 1900)
    for (const id of ids) {
      native.removeTokenCellsFromSequence(id, 100, next[id] as number);
      next[id] = 100;
    }
}

const quantile = (sorted: number[], q: number) => sorted[Math.round(q * (sorted.length - 1))] as number;
console.log(
  `model ${modelPath}; threads ${threads}; node-llama-cpp ${llama.buildType} binary (llama.cpp ${llama.llamaCppRelease.release}); ${rounds} alternating rounds, ms per decode`,
);
console.log('| batch | p10 | p50 | p90 | ms per token (p50) |\n|---|---|---|---|---|');
for (const [name, list] of Object.entries(times)) {
  const sorted = [...list].sort((a, b) => a - b);
  const tokens = name.startsWith('1 sequence × 1') ? 1 : n;
  const p50 = quantile(sorted, 0.5);
  console.log(
    `| ${name} | ${quantile(sorted, 0.1).toFixed(1)} | ${p50.toFixed(1)} | ${quantile(sorted, 0.9).toFixed(1)} | ${(p50 / tokens).toFixed(1)} |`,
  );
}
await context.dispose();
await model.dispose();
await llama.dispose();
