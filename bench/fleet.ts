/**
 * What `--redis` costs a node, and how fast a stream resumes through another node (issue 19's figures).
 *
 * Three server processes on one model: `plain` (no Redis), and fleet nodes `A` and `B` on one real redis-server
 * (Debian's, started here on a free loopback port, persistence off). Rounds alternate between `plain` and `A`:
 * a single Kobold SSE stream each, timed by the benchmarks' node:http client, with the event-loop thread's CPU
 * per generated token read from /proc (Linux only). Then resumes: a keyed stream starts on A, the client cuts it
 * after a few events and resumes on B with `Last-Event-ID`; the figure is the time from B's request to its first
 * event (the replay of what the client missed).
 *
 *   node --import tsx bench/fleet.ts [--threads 2] [--runs 6] [--tokens 128] [--resumes 10] [--model file.gguf]
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startRedisServer } from '../test/support/redis-server.ts';
import { benchModelPath, KOBOLD_SAMPLING, median } from './bench-model.ts';
import { type ServerProcess, settle, singleSlotServerArgs, startServerProcess } from './server-process.ts';
import { timeKoboldStream } from './stream-client.ts';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    runs: { type: 'string', default: '6' },
    tokens: { type: 'string', default: '128' },
    resumes: { type: 'string', default: '10' },
    model: { type: 'string' },
  },
});
const threads = Number(values.threads);
const runs = Number(values.runs);
const tokens = Number(values.tokens);
const resumes = Number(values.resumes);
const modelPath = resolve(values.model ?? benchModelPath());

/** Nanoseconds the main (event-loop) thread of `pid` has run. */
const mainThreadNs = (pid: number) => Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[0]);

interface Round {
  tps: number;
  loopUs: number;
}

async function streamRound(server: ServerProcess, round: number): Promise<Round> {
  const pid = server.child.pid as number;
  const before = mainThreadNs(pid);
  const timing = await timeKoboldStream(server.url, {
    prompt: `${round} Once upon a time`,
    max_length: tokens,
    ban_eos_token: true,
    sampler_seed: round + 1,
    ...KOBOLD_SAMPLING,
  });
  return { tps: timing.tokensPerSecond, loopUs: (mainThreadNs(pid) - before) / 1000 / timing.tokens };
}

/** Reads a stream until `events` events arrived, then cuts it; the last event id seen. */
function readThenCut(url: string, body: unknown, events: number): Promise<string> {
  return new Promise((done, fail) => {
    const req = request(`${url}/api/extra/generate/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => m[1] as string);
        if (ids.length >= events) {
          req.destroy();
          done(ids[events - 1] as string);
        }
      });
    });
    req.on('error', (error) => (req.destroyed ? undefined : fail(error)));
    req.end(JSON.stringify(body));
  });
}

/** Milliseconds from sending a resume to its first event, then reads the stream to its end. */
function timeResume(url: string, body: unknown, lastEventId: string): Promise<number> {
  return new Promise((done, fail) => {
    const started = performance.now();
    let first = 0;
    const req = request(`${url}/api/extra/generate/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'last-event-id': lastEventId },
    });
    req.on('response', (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (!first && chunk.includes('\ndata: ')) first = performance.now();
      });
      res.on('end', () => done(first - started));
    });
    req.on('error', fail);
    req.end(JSON.stringify(body));
  });
}

const redis = await startRedisServer();
const args = singleSlotServerArgs(modelPath, threads);
const servers: ServerProcess[] = [];
try {
  const plain = await startServerProcess(args);
  servers.push(plain);
  const nodeA = await startServerProcess([...args, '--redis', redis.url]);
  servers.push(nodeA);
  const nodeB = await startServerProcess([...args, '--redis', redis.url]);
  servers.push(nodeB);

  const figures: Record<'plain' | 'fleet', Round[]> = { plain: [], fleet: [] };
  for (let round = -1; round < runs; round++) {
    const order = round % 2 === 0 ? (['plain', 'fleet'] as const) : (['fleet', 'plain'] as const);
    for (const side of order) {
      await settle();
      const figure = await streamRound(side === 'plain' ? plain : nodeA, round);
      if (round >= 0) figures[side].push(figure);
    }
  }
  const resumeMs: number[] = [];
  for (let run = 0; run < resumes; run++) {
    const body = {
      prompt: `${run} The fox`,
      max_length: tokens,
      ban_eos_token: true,
      sampler_seed: run + 1,
      genkey: `BENCHFLEET${run}-${Date.now()}`,
      ...KOBOLD_SAMPLING,
    };
    const lastId = await readThenCut(nodeA.url, body, 4);
    resumeMs.push(await timeResume(nodeB.url, body, lastId));
  }

  const of = (side: 'plain' | 'fleet', key: keyof Round) => median(figures[side].map((f) => f[key]));
  const pct = (a: number, b: number) => `${(((a - b) / b) * 100).toFixed(1)} %`;
  console.log(`model ${modelPath}; threads ${threads}; ${tokens} tokens; ${runs} alternating rounds, medians:`);
  console.log('| node | decode t/s | event-loop µs per token |');
  console.log('|---|---|---|');
  console.log(`| single (no --redis) | ${of('plain', 'tps').toFixed(1)} | ${of('plain', 'loopUs').toFixed(0)} |`);
  console.log(`| fleet (--redis) | ${of('fleet', 'tps').toFixed(1)} | ${of('fleet', 'loopUs').toFixed(0)} |`);
  console.log(
    `--redis against none: tokens/s ${(of('fleet', 'tps') / of('plain', 'tps')).toFixed(3)}×, event-loop CPU per token ${pct(of('fleet', 'loopUs'), of('plain', 'loopUs'))}`,
  );
  const sorted = [...resumeMs].sort((a, b) => a - b);
  console.log(
    `resume through another node, request to first event: median ${median(resumeMs).toFixed(1)} ms, max ${sorted.at(-1)?.toFixed(1)} ms over ${resumes}`,
  );
} finally {
  for (const server of servers) await server.stop();
  await redis.close();
}
