/**
 * Two builds of our server side by side: each checkout's `kindling serve` in its own process, single Kobold SSE
 * streams alternating between them, so a change is measured against the code before it in the same minutes
 * (on this machine the speed drifts by ±30 % within minutes; only such pairs mean anything).
 *
 *   git worktree add /tmp/before HEAD~1 && ln -s "$PWD/node_modules" /tmp/before/node_modules
 *   node --import tsx bench/server-ab.ts --a /tmp/before --b . [--runs 10] [--tokens 128] [--threads 2]
 *     [--model file.gguf] [--clock client|server] [--server-args="--parallel 4"] [--clients 4]
 *     [--env-a KEY=VALUE,…] [--env-b KEY=VALUE,…]
 *
 * `--clock client` (default) times tokens as the client receives them; `server` takes the server's own decode
 * speed (`last_eval_speed` of `/api/extra/perf`). With `--clients N` each round is N concurrent streams and the
 * figure is the aggregate: tokens the server generated (its `tokens_generated`) per second of the round's wall
 * time. `--env-a`/`--env-b` set environment variables for one side's server, so one checkout can be compared with
 * itself under different settings (`--a . --b . --env-b UV_THREADPOOL_SIZE=2`). Both checkouts load the binary
 * that `--b`'s node_modules holds when `--a` links to it, as above.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchModelPath, KOBOLD_SAMPLING, median } from './bench-model.ts';
import { parseEnvList, settle, singleSlotServerArgs, startServerProcess } from './server-process.ts';
import { timeKoboldStream } from './stream-client.ts';

const { values } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string', default: '.' },
    runs: { type: 'string', default: '10' },
    tokens: { type: 'string', default: '128' },
    threads: { type: 'string', default: '2' },
    model: { type: 'string' },
    clock: { type: 'string', default: 'client' },
    'server-args': { type: 'string', default: '' },
    clients: { type: 'string', default: '1' },
    'env-a': { type: 'string', default: '' },
    'env-b': { type: 'string', default: '' },
  },
});
if (!values.a) throw new Error('--a <checkout> is required (the build to compare against)');
const modelPath = resolve(values.model ?? benchModelPath());
const checkouts = [resolve(values.a), resolve(values.b as string)];

// Later flags win, so `--server-args="--parallel 4"` overrides the single slot.
const serverArgs = [
  ...singleSlotServerArgs(modelPath, Number(values.threads)),
  ...(values['server-args'] as string).split(' ').filter(Boolean),
];
const base = 5600 + Math.floor(Math.random() * 100) * 2;
const servers = [
  await startServerProcess(serverArgs, { cwd: checkouts[0], port: base, env: parseEnvList(values['env-a'] as string) }),
  await startServerProcess(serverArgs, {
    cwd: checkouts[1],
    port: base + 1,
    env: parseEnvList(values['env-b'] as string),
  }),
];
const clients = Number(values.clients);
type Perf = { last_eval_speed: number; tokens_generated: number };
const perfOf = async (url: string) => (await (await fetch(`${url}/api/extra/perf`)).json()) as Perf;

/** One round on one server: a single stream's speed, or N concurrent streams' aggregate. */
async function round(url: string, run: number): Promise<number> {
  const body = (i: number) => ({
    prompt: `${run} ${i} Once upon a time`,
    max_length: Number(values.tokens),
    ban_eos_token: true,
    sampler_seed: run * 100 + i + 1,
    ...KOBOLD_SAMPLING,
  });
  if (clients === 1) {
    const timing = await timeKoboldStream(url, body(0));
    return values.clock === 'server' ? (await perfOf(url)).last_eval_speed : timing.tokensPerSecond;
  }
  const before = (await perfOf(url)).tokens_generated;
  const started = performance.now();
  await Promise.all(Array.from({ length: clients }, (_, i) => timeKoboldStream(url, body(i))));
  const wall = performance.now() - started;
  return (((await perfOf(url)).tokens_generated - before) * 1000) / wall;
}

const speeds: number[][] = [[], []];
for (let run = 0; run <= Number(values.runs); run++) {
  // Every other round b goes first: with a fixed order the side that ran second gained a few percent, whatever
  // it ran (the same build on both sides read 104.6 % with the flag under test on b, 94 % with it on a).
  const order = run % 2 === 0 ? [0, 1] : [1, 0];
  for (const i of order) {
    await settle();
    const speed = await round((servers[i] as (typeof servers)[number]).url, run);
    if (run > 0) speeds[i]?.push(speed);
  }
}
for (const server of servers) await server.stop();

const [a, b] = speeds as [number[], number[]];
const what = clients === 1 ? `streams each, ${values.clock} clock` : `rounds of ${clients} streams, aggregate`;
console.log(`${values.runs} alternating ${what}, ${values.tokens} tokens, medians:`);
console.log(`a ${checkouts[0]}: ${median(a).toFixed(1)} t/s (${a.map((x) => x.toFixed(0)).join(' ')})`);
console.log(`b ${checkouts[1]}: ${median(b).toFixed(1)} t/s (${b.map((x) => x.toFixed(0)).join(' ')})`);
console.log(`paired median b/a: ${(median(b.map((x, i) => x / (a[i] as number))) * 100).toFixed(1)}%`);
