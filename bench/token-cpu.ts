/**
 * CPU time per generated token outside the decode: the event loop's thread of our server (its own process,
 * Kobold SSE streams) beside the one of node-llama-cpp called directly in this process, and the client's. On a
 * 2-core machine every microsecond spent there is taken from the decoding threads, whenever it runs, so this is
 * what bounds the server's speed against the bare engine. Unlike tokens/s, which drift by ±20 % within minutes
 * here, CPU time per token is steady, so a change of a few percent shows.
 *
 *   node --import tsx bench/token-cpu.ts [--threads 2] [--runs 6] [--tokens 128] [--model file.gguf]
 *     [--a <checkout>] [--env-a KEY=VALUE,…] [--clients 4] [--llama-server path/to/llama-server]
 *
 * Read from /proc (Linux only): a thread's `schedstat` counts the nanoseconds it ran. The client is the
 * benchmarks' node:http one (stream-client.ts), in this process; its figure is this thread's time during the
 * server's rounds. With `--a` a second checkout's server is measured the same way, in alternating rounds
 * (`--a . --env-a KINDLING_NATIVE_STEP=off` compares this checkout with and without the native step).
 * With `--clients N` each round is N concurrent streams on servers with N slots (the direct side is left out:
 * node-llama-cpp's own batching is not what we compare with there); `--llama-server` adds llama.cpp's server
 * with N slots, whose main thread does its batching, sampling and JSON, beside HTTP threads of its own.
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
import { startLlamaServer, timeLlamaServerStream } from './llama-server-peer.ts';
import {
  parseEnvList,
  type ServerProcess,
  settle,
  singleSlotServerArgs,
  startServerProcess,
} from './server-process.ts';
import { timeKoboldStream } from './stream-client.ts';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    runs: { type: 'string', default: '6' },
    tokens: { type: 'string', default: '128' },
    model: { type: 'string' },
    a: { type: 'string' },
    'env-a': { type: 'string', default: '' },
    clients: { type: 'string', default: '1' },
    'llama-server': { type: 'string' },
  },
});
const clients = Number(values.clients);
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

/** One round of `clients` concurrent streams; tokens/s is the aggregate over the round's wall time. */
async function measuredRound(
  pid: number,
  /** `tokensPerSecond`: the stream's decode speed where the client measures it (one client only). */
  stream: (client: number) => Promise<{ tokens: number; tokensPerSecond?: number }>,
): Promise<Sample> {
  const main0 = ranNs(pid);
  const all0 = allThreadsNs(pid);
  const client0 = ranNs(process.pid);
  const started = performance.now();
  const streams = await Promise.all(Array.from({ length: clients }, (_, client) => stream(client)));
  const wall = performance.now() - started;
  const tokens = streams.reduce((sum, s) => sum + s.tokens, 0);
  const perToken = (ns: number) => ns / 1000 / tokens;
  return {
    mainUs: perToken(ranNs(pid) - main0),
    clientUs: perToken(ranNs(process.pid) - client0),
    processUs: perToken(allThreadsNs(pid) - all0),
    tps: clients === 1 ? (streams[0]?.tokensPerSecond ?? (tokens * 1000) / wall) : (tokens * 1000) / wall,
  };
}

const serverRound = (server: ServerProcess, round: number) =>
  measuredRound(server.child.pid as number, (client) =>
    timeKoboldStream(server.url, {
      prompt: `${round} ${client} ${prompt}`,
      max_length: generate,
      sampler_seed: round * 100 + client + 1,
      ...KOBOLD_SAMPLING,
    }),
  );

const llamaServerRound = (server: ServerProcess, round: number) =>
  measuredRound(server.child.pid as number, (client) =>
    timeLlamaServerStream(server.url, {
      prompt: `${round} ${client} ${prompt}`,
      n_predict: generate,
      seed: round * 100 + client + 1,
      ...KOBOLD_SAMPLING,
      min_p: 0,
    }),
  );

const serverArgs = singleSlotServerArgs(modelPath, threads).map((arg, i, all) =>
  all[i - 1] === '--parallel' ? String(clients) : arg,
);
const sides: Array<{ name: string; round: (round: number) => Promise<Sample> }> =
  clients === 1 ? [{ name: 'node-llama-cpp direct (this process)', round: directRound }] : [];
const servers: ServerProcess[] = [];
try {
  if (values['llama-server']) {
    const peer = await startLlamaServer(values['llama-server'], {
      modelPath,
      threads,
      slots: clients,
      contextSize: 2048 * clients,
    });
    servers.push(peer);
    sides.push({ name: 'llama-server', round: (round) => llamaServerRound(peer, round) });
  }
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
      await settle();
      const sample = await side.round(round);
      if (round >= 0) samples[i]?.push(sample);
    }
  }
  console.log(
    `model ${modelPath}; threads ${threads}; ${clients} client(s); 146-token prompt, ${generate} tokens; ${runs} alternating rounds, medians per generated token:`,
  );
  console.log('| | event-loop thread µs | client µs | whole process µs | decode t/s |');
  console.log('|---|---|---|---|---|');
  for (const [i, side] of sides.entries()) {
    const of = (key: keyof Sample) => median((samples[i] ?? []).map((s) => s[key]));
    console.log(
      `| ${side.name} | ${of('mainUs').toFixed(0)} | ${side.round === directRound ? '' : of('clientUs').toFixed(0)} | ${of('processUs').toFixed(0)} | ${of('tps').toFixed(1)} |`,
    );
  }
} finally {
  for (const server of servers) await server.stop();
  await context.dispose();
  await model.dispose();
  await llama.dispose();
}
