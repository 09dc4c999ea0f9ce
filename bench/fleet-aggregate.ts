/**
 * What a second node adds (issue 19's two-node figure): aggregate tokens/s of `--clients` concurrent Kobold SSE
 * streams on one node, against two fleet nodes on one real redis-server (Debian's, started here on a free
 * loopback port, persistence off). Every node runs `--threads` decode threads and `--parallel` slots.
 *
 * Two ways to reach the fleet: `spread`, the clients sent to the nodes in turn (what a round-robin load balancer
 * does), and `one-door`, every client sent to node A, so B's share reaches it only through the fleet's queue
 * (A has `--parallel` slots; past them, requests wait in Redis and B's free slots take them).
 *
 *   node --import tsx bench/fleet-aggregate.ts [--threads 1] [--clients 8] [--parallel 4] [--tokens 128]
 *     [--rounds 4] [--model file.gguf]
 *
 * Rounds alternate between the sides; each figure is the median round's generated tokens (the servers' own
 * count) over its wall time.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startRedisServer } from '../test/support/redis-server.ts';
import { benchModelPath, KOBOLD_SAMPLING, median } from './bench-model.ts';
import { type ServerProcess, settle, startServerProcess } from './server-process.ts';
import { timeKoboldStream } from './stream-client.ts';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '1' },
    clients: { type: 'string', default: '8' },
    parallel: { type: 'string', default: '4' },
    tokens: { type: 'string', default: '128' },
    rounds: { type: 'string', default: '4' },
    model: { type: 'string' },
  },
});
const threads = Number(values.threads);
const clients = Number(values.clients);
const parallel = Number(values.parallel);
const tokens = Number(values.tokens);
const rounds = Number(values.rounds);
const modelPath = resolve(values.model ?? benchModelPath());

const args = [
  ...['--model', modelPath, '--threads', String(threads), '--parallel', String(parallel)],
  ...['--contextsize', String(512 * parallel), '--heartbeat', '0', '--gpulayers', '0', '--queue', '64'],
];

const generated = async (server: ServerProcess) =>
  ((await (await fetch(`${server.url}/api/extra/perf`)).json()) as { tokens_generated: number }).tokens_generated;

/** One round: `clients` streams at once, client i sent to `targets[i % targets.length]`; aggregate tokens/s. */
async function round(targets: ServerProcess[], counted: ServerProcess[], index: number): Promise<number> {
  const before = await Promise.all(counted.map(generated));
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, (_, i) =>
      timeKoboldStream((targets[i % targets.length] as ServerProcess).url, {
        prompt: `${index}-${i} Once upon a time, in a land far away,`,
        max_length: tokens,
        ban_eos_token: true,
        sampler_seed: index * 100 + i + 1,
        ...KOBOLD_SAMPLING,
      }),
    ),
  );
  const wall = performance.now() - started;
  const after = await Promise.all(counted.map(generated));
  const total = after.reduce((sum, n, i) => sum + n - (before[i] as number), 0);
  return (total * 1000) / wall;
}

const redis = await startRedisServer();
const servers: ServerProcess[] = [];
try {
  const single = await startServerProcess(args);
  servers.push(single);
  const nodeA = await startServerProcess([...args, '--redis', redis.url]);
  servers.push(nodeA);
  const nodeB = await startServerProcess([...args, '--redis', redis.url]);
  servers.push(nodeB);
  const sides = {
    single: { targets: [single], counted: [single] },
    spread: { targets: [nodeA, nodeB], counted: [nodeA, nodeB] },
    'one-door': { targets: [nodeA], counted: [nodeA, nodeB] },
  };
  type Side = keyof typeof sides;
  const figures: Record<Side, number[]> = { single: [], spread: [], 'one-door': [] };
  const names = Object.keys(sides) as Side[];
  for (let r = -1; r < rounds; r++) {
    const order = r % 2 === 0 ? names : [...names].reverse();
    for (const side of order) {
      await settle();
      const figure = await round(sides[side].targets, sides[side].counted, r + 2);
      if (r >= 0) figures[side].push(figure);
    }
  }
  const of = (side: Side) => median(figures[side]);
  console.log(
    `model ${modelPath}; --threads ${threads} --parallel ${parallel} per node; ${clients} clients x ${tokens} tokens; ${rounds} alternating rounds, medians:`,
  );
  console.log('| setup | aggregate t/s | against one node |');
  console.log('|---|---|---|');
  for (const side of names)
    console.log(`| ${side} | ${of(side).toFixed(1)} | ${(of(side) / of('single')).toFixed(2)}× |`);
} finally {
  for (const server of servers) await server.stop();
  await redis.close();
}
