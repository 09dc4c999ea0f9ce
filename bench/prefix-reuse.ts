/**
 * Time to first token for a follow-up request that shares 95% of a 1,500-token prompt with the previous
 * one (a story client resending the story plus a little), against the same prompt cold; and fairness
 * with 16 clients on 4 slots (start order vs submission order).
 *
 *   node --import tsx bench/prefix-reuse.ts [--threads 2] [--model file.gguf]
 */
import { parseArgs } from 'node:util';
import { defaultServerConfig } from '../src/config/server-config.ts';
import { startServer } from '../src/main.ts';
import { benchModelPath, benchPrompt, median } from './bench-model.ts';
import { timeKoboldStream } from './stream-client.ts';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    model: { type: 'string' },
    runs: { type: 'string', default: '3' },
  },
});
const threads = Number(values.threads);
const modelPath = values.model ?? benchModelPath();
const runs = Number(values.runs);

const running = await startServer({
  ...defaultServerConfig(modelPath),
  port: 0,
  threads,
  gpuLayers: 0,
  parallel: 4,
  maxQueue: 32,
  contextSize: 2048,
  logLevel: 'silent',
});
const tokenize = (t: string) => running.context.engine.tokenize(t, { special: false, addBos: false });
const base = benchPrompt(tokenize, 1500);
const cold: number[] = [];
const warm: number[] = [];
for (let run = 0; run < runs; run++) {
  // Cut the last 5% and append new text of the same length: 95% shared.
  const story = `${run} ${base}`;
  const shared = story.slice(0, Math.floor(story.length * 0.95));
  const followUp = `${shared}${' The happy dog ran to the end.'.repeat(20)}`.slice(0, story.length);
  cold.push((await timeKoboldStream(running.url, { prompt: story, max_length: 8, sampler_seed: 1 })).firstTokenMs);
  warm.push((await timeKoboldStream(running.url, { prompt: followUp, max_length: 8, sampler_seed: 1 })).firstTokenMs);
}
console.log(
  `model ${modelPath}; threads ${threads}; 4 slots; ${tokenize(base).length}-token prompt, follow-up shares 95%; ${runs} runs`,
);
console.log(
  `| | time to first token, median (ms) |\n|---|---|\n| cold prompt | ${median(cold).toFixed(0)} |\n| follow-up (95% shared) | ${median(warm).toFixed(0)} |`,
);
console.log(`follow-up / cold: ${((median(warm) / median(cold)) * 100).toFixed(1)}%`);

// Fairness: 16 clients on 4 slots, submitted 5 ms apart; each reports when its first token came.
const short = benchPrompt(tokenize, 64);
const submitted: number[] = [];
const firsts = await Promise.all(
  Array.from({ length: 16 }, async (_, i) => {
    await new Promise((resolve) => setTimeout(resolve, i * 5));
    submitted[i] = performance.now();
    const timing = await timeKoboldStream(running.url, {
      prompt: `${i} ${short}`,
      max_length: 32,
      sampler_seed: i + 1,
    });
    return { i, first: (submitted[i] as number) + timing.firstTokenMs };
  }),
);
const startOrder = [...firsts].sort((a, b) => a.first - b.first).map((f) => f.i);
const displaced = startOrder.map((client, position) => Math.abs(Math.floor(client / 4) - Math.floor(position / 4)));
console.log(
  `fairness, 16 clients on 4 slots: first-token order ${startOrder.join(',')}; largest displacement ${Math.max(...displaced)} round(s)`,
);
await running.close();
