/**
 * CPU time per generated token outside the decode: the event loop's thread of our server (its own process,
 * Kobold SSE streams) beside the one of node-llama-cpp called directly in this process, and the client's. On a
 * 2-core machine every microsecond spent there is taken from the decoding threads, whenever it runs, so this is
 * what bounds the server's speed against the bare engine. Unlike tokens/s, which drift by ±20 % within minutes
 * here, CPU time per token is steady, so a change of a few percent shows.
 *
 *   node --import tsx bench/token-cpu.ts [--threads 2] [--runs 6] [--tokens 128] [--model file.gguf]
 *     [--a <checkout>] [--env-a KEY=VALUE,…]
 *
 * Read from /proc (Linux only): a thread's `schedstat` counts the nanoseconds it ran. The client is the
 * benchmarks' node:http one (stream-client.ts), in this process; its figure is this thread's time during the
 * server's rounds. With `--a` a second checkout's server is measured the same way, in alternating rounds.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
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
import { parseEnvList, type ServerProcess, singleSlotServerArgs, startServerProcess } from './server-process.ts';
import { timeKoboldStream } from './stream-client.ts';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    runs: { type: 'string', default: '6' },
    tokens: { type: 'string', default: '128' },
    model: { type: 'string' },
    a: { type: 'string' },
    'env-a': { type: 'string', default: '' },
  },
});
const threads = Number(values.threads);
const runs = Number(values.runs);
const generate = Number(values.tokens);
const modelPath = resolve(values.model ?? benchModelPath());

/** Nanoseconds thread `tid` of process `pid` has run. */
const ranNs = (pid: number, tid = pid) =>
  Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
/** Nanoseconds of CPU all threads of `pid` have used (user + system; the kernel counts it in 10 ms ticks). */
function allThreadsNs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return ((Number(stat[11]) + Number(stat[12])) * 1e9) / 100;
}

const llama = await benchLlama(threads);
const model = await llama.loadModel({ modelPath });
const context = await singleSequenceContext(model, threads);
const sequence = context.getSequence();
const prompt = benchPrompt((t) => model.tokenize(t), 146);

interface Sample {
  mainUs: number;
  clientUs: number;
  processUs: number;
  tps: number;
}

async function directRound(round: number): Promise<Sample> {
  const main0 = ranNs(process.pid);
  const all0 = allThreadsNs(process.pid);
  const timing = await timeDirectStream(
    sequence,
    () => [model.tokens.bos as Token, ...model.tokenize(`${round} ${prompt}`)],
    { ...BENCH_SAMPLING, seed: round + 1 },
    generate,
  );
  const perToken = (ns: number) => ns / 1000 / generate;
  return {
    mainUs: perToken(ranNs(process.pid) - main0),
    clientUs: 0,
    processUs: perToken(allThreadsNs(process.pid) - all0),
    tps: timing.tps,
  };
}

async function serverRound(server: ServerProcess, round: number): Promise<Sample> {
  const pid = server.child.pid as number;
  const main0 = ranNs(pid);
  const all0 = allThreadsNs(pid);
  const client0 = ranNs(process.pid);
  const timing = await timeKoboldStream(server.url, {
    prompt: `${round} ${prompt}`,
    max_length: generate,
    sampler_seed: round + 1,
    ...KOBOLD_SAMPLING,
  });
  const perToken = (ns: number) => ns / 1000 / timing.tokens;
  return {
    mainUs: perToken(ranNs(pid) - main0),
    clientUs: perToken(ranNs(process.pid) - client0),
    processUs: perToken(allThreadsNs(pid) - all0),
    tps: timing.tokensPerSecond,
  };
}

const serverArgs = singleSlotServerArgs(modelPath, threads);
const sides: Array<{ name: string; round: (round: number) => Promise<Sample> }> = [
  { name: 'node-llama-cpp direct (this process)', round: directRound },
];
const servers: ServerProcess[] = [];
try {
  const b = await startServerProcess(serverArgs);
  servers.push(b);
  sides.push({ name: 'Kindling server (.)', round: (round) => serverRound(b, round) });
  if (values.a) {
    const a = await startServerProcess(serverArgs, { cwd: resolve(values.a), env: parseEnvList(values['env-a']) });
    servers.push(a);
    sides.push({ name: `Kindling server (${values.a})`, round: (round) => serverRound(a, round) });
  }
  const samples: Sample[][] = sides.map(() => []);
  for (let round = -1; round < runs; round++) {
    for (const [i, side] of sides.entries()) {
      const sample = await side.round(round);
      if (round >= 0) samples[i]?.push(sample);
    }
  }
  console.log(
    `model ${modelPath}; threads ${threads}; 146-token prompt, ${generate} tokens; ${runs} alternating rounds, medians per generated token:`,
  );
  console.log('| | event-loop thread µs | client µs | whole process µs | decode t/s |');
  console.log('|---|---|---|---|---|');
  for (const [i, side] of sides.entries()) {
    const of = (key: keyof Sample) => median((samples[i] ?? []).map((s) => s[key]));
    console.log(
      `| ${side.name} | ${of('mainUs').toFixed(0)} | ${i === 0 ? '' : of('clientUs').toFixed(0)} | ${of('processUs').toFixed(0)} | ${of('tps').toFixed(1)} |`,
    );
  }
} finally {
  for (const server of servers) await server.stop();
  await context.dispose();
  await model.dispose();
  await llama.dispose();
}
