/**
 * Where a single stream's speed goes: node-llama-cpp driven directly in this process, then our server (its own
 * process) on the sync endpoint, on Kobold SSE with a client that reads, and on SSE with a client that pauses
 * its socket until the generation ends. Server figures are the server's own decode speed (`last_eval_speed`
 * of `/api/extra/perf`), so the client's timing does not enter them. The four alternate round by round.
 *
 *   node --import tsx bench/stream-cost.ts [--threads 2] [--runs 8] [--tokens 128] [--model file.gguf]
 */
import { request } from 'node:http';
import { parseArgs } from 'node:util';
import type { Token } from 'node-llama-cpp';
import {
  BENCH_SAMPLING,
  benchLlama,
  benchModelPath,
  KOBOLD_SAMPLING,
  median,
  singleSequenceContext,
} from './bench-model.ts';
import { timeDirectStream } from './direct-stream.ts';
import { singleSlotServerArgs, startServerProcess } from './server-process.ts';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    runs: { type: 'string', default: '8' },
    tokens: { type: 'string', default: '128' },
    model: { type: 'string' },
  },
});
const threads = Number(values.threads);
const generate = Number(values.tokens);
const modelPath = values.model ?? benchModelPath();
const prompt = 'Once upon a time';

const llama = await benchLlama(threads);
const model = await llama.loadModel({ modelPath });
const context = await singleSequenceContext(model, threads);
const sequence = context.getSequence();
const server = await startServerProcess(singleSlotServerArgs(modelPath, threads));

const body = (run: number) =>
  JSON.stringify({
    prompt: `${run} ${prompt}`,
    max_length: generate,
    ban_eos_token: true,
    sampler_seed: run + 1,
    ...KOBOLD_SAMPLING,
  });

async function direct(run: number): Promise<number> {
  const tokens = () => [model.tokens.bos as Token, ...model.tokenize(`${run} ${prompt}`)];
  const options = { ...BENCH_SAMPLING, seed: run + 1 };
  return (await timeDirectStream(sequence, tokens, options, generate)).tps;
}

async function serverSpeed(): Promise<number> {
  const perf = (await (await fetch(`${server.url}/api/extra/perf`)).json()) as { last_eval_speed: number };
  return perf.last_eval_speed;
}

async function sync(run: number): Promise<number> {
  const init = { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(run) };
  await (await fetch(`${server.url}/api/v1/generate`, init)).text();
  return serverSpeed();
}

/** A paused client resumes once the server reports itself idle, so its socket stays unread throughout. */
async function stream(run: number, paused: boolean): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    const req = request(
      `${server.url}/api/extra/generate/stream`,
      { method: 'POST', headers: { 'content-type': 'application/json' } },
      (res) => {
        if (paused) {
          res.pause();
          void (async () => {
            for (;;) {
              const perf = (await (await fetch(`${server.url}/api/extra/perf`)).json()) as { idle: number };
              if (perf.idle === 1) break;
              await new Promise((r) => setTimeout(r, 200));
            }
            res.resume();
          })();
        }
        res.on('data', () => {});
        res.on('end', resolve);
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body(run));
  });
  return serverSpeed();
}

const sides = {
  'node-llama-cpp direct': direct,
  'server, sync /api/v1/generate': sync,
  'server, SSE, client reading': (run: number) => stream(run, false),
  'server, SSE, client paused': (run: number) => stream(run, true),
};
const speeds = new Map<string, number[]>(Object.keys(sides).map((name) => [name, []]));
for (let run = 0; run <= Number(values.runs); run++) {
  for (const [name, side] of Object.entries(sides)) {
    const speed = await side(run);
    if (run > 0) speeds.get(name)?.push(speed); // run 0 is the warm-up
  }
}
await server.stop();
await context.dispose();
await model.dispose();
await llama.dispose();

console.log(`model ${modelPath}; threads ${threads}; ${generate} tokens; ${values.runs} alternating rounds, medians`);
const base = median(speeds.get('node-llama-cpp direct') as number[]);
for (const [name, xs] of speeds) {
  const m = median(xs);
  console.log(
    `${name.padEnd(32)} ${m.toFixed(1)} t/s (min ${Math.min(...xs).toFixed(1)}, max ${Math.max(...xs).toFixed(1)}), ${((m / base) * 100).toFixed(0)} % of direct`,
  );
}
