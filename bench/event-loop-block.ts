/**
 * How long one huge request holds the server's event loop: a probe request (`GET /api/v1/model`) every 10 ms
 * while an 8 MB and a 31 MB body go to each route that tokenizes a prompt. Prints, per big request, its own
 * duration and status, and the probe's latency (p50, p99, max) while it ran (the probe runs in a process of its own); the goal is a probe max under
 * 100 ms plus the idle baseline. On a loaded machine a probe also waits while the server is not scheduled at
 * all, so the table adds the most server CPU time (all threads) that one probe spanned. The server runs as its own process, watched: past `--rss-limit-mb` it is
 * killed and the run says so.
 *
 *   node --import tsx bench/event-loop-block.ts [--model test|bench|<file.gguf>] [--sizes 8,31]
 *     [--routes tokencount,generate,...] [--rss-limit-mb 3000] [--cwd <another checkout, e.g. the code before>]
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { testModelPath } from '../test/support/test-model.ts';
import { benchModelPath } from './bench-model.ts';
import { startServerProcess } from './server-process.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'test' },
    sizes: { type: 'string', default: '8,31' },
    routes: { type: 'string', default: '' },
    'rss-limit-mb': { type: 'string', default: '3000' },
    'probe-ms': { type: 'string', default: '10' },
    cwd: { type: 'string' },
  },
});
const modelPath =
  values.model === 'test' ? testModelPath() : values.model === 'bench' ? benchModelPath() : String(values.model);
const sizesMb = String(values.sizes).split(',').map(Number);
const rssLimit = Number(values['rss-limit-mb']) * 1e6;
const probeEvery = Number(values['probe-ms']);

/** Each route that turns a prompt into tokens, with the body it takes. */
const ROUTES: Record<string, { path: string; body: (input: any) => unknown; ids?: boolean }> = {
  tokencount: { path: '/api/extra/tokencount', body: (prompt) => ({ prompt }) },
  generate: { path: '/api/v1/generate', body: (prompt) => ({ prompt, max_length: 8 }) },
  'openai-completions': { path: '/v1/completions', body: (prompt) => ({ prompt, max_tokens: 8 }) },
  'openai-chat': {
    path: '/v1/chat/completions',
    body: (content) => ({ messages: [{ role: 'user', content }], max_tokens: 8 }),
  },
  'ollama-generate': {
    path: '/api/generate',
    body: (prompt) => ({ model: 'tiny', prompt, stream: false, options: { num_predict: 8 } }),
  },
  'ollama-chat': {
    path: '/api/chat',
    body: (content) => ({
      model: 'tiny',
      messages: [{ role: 'user', content }],
      stream: false,
      options: { num_predict: 8 },
    }),
  },
  'anthropic-count': {
    path: '/v1/messages/count_tokens',
    body: (content) => ({ model: 'tiny', messages: [{ role: 'user', content }] }),
  },
  // Token ids instead of text (not in the default set): `text` is replaced by ids of about the same size.
  'kobold-detokenize': { path: '/api/extra/detokenize', body: (ids) => ({ ids }), ids: true },
  'openai-completions-ids': { path: '/v1/completions', body: (prompt) => ({ prompt, max_tokens: 8 }), ids: true },
  'anthropic-messages': {
    path: '/v1/messages',
    body: (content) => ({ model: 'tiny', max_tokens: 8, messages: [{ role: 'user', content }] }),
  },
};
const routeNames = values.routes
  ? String(values.routes).split(',')
  : Object.keys(ROUTES).filter((name) => !ROUTES[name]?.ids);

const sentence = 'Once upon a time there was a little fox and the dog said yes to the happy cat. ';
/** A story text of about `mb` MB (10^6 bytes), and its bodies built before any timing starts. */
function storyText(mb: number): string {
  return sentence.repeat(Math.ceil((mb * 1e6) / sentence.length)).slice(0, mb * 1e6);
}

const server = await startServerProcess(
  ['--model', modelPath, '--threads', '1', '--parallel', '1', '--heartbeat', '0'],
  {
    ...(values.cwd ? { cwd: String(values.cwd) } : {}),
  },
);
const pid = server.child.pid as number;
let peakRss = 0;
let killed = false;
const rssOf = () => {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
    return line ? Number(line[1]) * 1024 : 0;
  } catch {
    return 0;
  }
};
const watch = setInterval(() => {
  const rss = rssOf();
  peakRss = Math.max(peakRss, rss);
  if (rss > rssLimit && !killed) {
    killed = true;
    console.error(`server RSS ${(rss / 1e6).toFixed(0)} MB is past the limit: killed`);
    server.child.kill('SIGKILL');
  }
}, 50);

/**
 * The probe runs in a process of its own, so what it measures is the server: in this process the big request's
 * own upload and the reading of its answer (megabytes of ids from tokencount) would delay the probe too. It
 * prints one line per probe: when it started (epoch ms), its latency and the server's CPU time during it.
 */
const PROBE_SCRIPT = `
const { readFileSync } = require('node:fs');
const [url, pid, every] = process.argv.slice(1);
const cpu = () => { try { const f = readFileSync('/proc/' + pid + '/stat', 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) * 10; } catch { return 0; } };
(async () => { for (;;) {
  const at = Date.now(); const started = performance.now(); const cpuStart = cpu();
  try { await (await fetch(url)).arrayBuffer(); } catch {}
  const ms = performance.now() - started;
  process.stdout.write(at + ' ' + ms.toFixed(2) + ' ' + (cpu() - cpuStart) + '\\n');
  const wait = Number(every) - ms; if (wait > 0) await new Promise((r) => setTimeout(r, wait));
} })();
`;
const prober = spawn(
  process.execPath,
  ['-e', PROBE_SCRIPT, `${server.url}/api/v1/model`, String(pid), String(probeEvery)],
  {
    stdio: ['ignore', 'pipe', 'inherit'],
  },
);
const probeLines: Array<{ at: number; ms: number; cpuMs: number }> = [];
createInterface({ input: prober.stdout }).on('line', (line) => {
  const [at, ms, cpuMs] = line.split(' ').map(Number);
  probeLines.push({ at: at as number, ms: ms as number, cpuMs: cpuMs as number });
});

/** The probes that started while `until` ran: latencies in ms, and the server's CPU time during each. */
async function probe(until: Promise<unknown>): Promise<Array<{ ms: number; cpuMs: number }>> {
  const from = Date.now();
  await until;
  const to = Date.now();
  // The probe in flight at the end reports when it returns.
  const deadline = Date.now() + 5000;
  while (!probeLines.some((line) => line.at > to) && Date.now() < deadline && !killed)
    await new Promise((resolve) => setTimeout(resolve, 5));
  return probeLines.filter((line) => line.at >= from && line.at <= to);
}

const percentile = (sorted: number[], p: number) =>
  sorted.length === 0
    ? Number.NaN
    : (sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] as number);

interface Row {
  route: string;
  mb: number;
  status: number | string;
  requestMs: number;
  probes: number;
  p50: number;
  p99: number;
  max: number;
  /** The most server CPU time any probe spanned: what a busy loop could have made it wait, at most. */
  maxCpuMs: number;
  benchLoopMaxMs: number;
  peakRssMb: number;
}
const rows: Row[] = [];
// The bench's own loop: a probe can only be as prompt as the process measuring it.
const ownLoop = monitorEventLoopDelay({ resolution: 5 });

async function measure(route: string, mb: number, body: Uint8Array<ArrayBuffer> | undefined): Promise<void> {
  peakRss = rssOf();
  ownLoop.reset();
  ownLoop.enable();
  const started = performance.now();
  let status: number | string = '-';
  const big = body
    ? fetch(`${server.url}${ROUTES[route]?.path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      })
        .then(async (response) => {
          status = response.status;
          await response.arrayBuffer();
        })
        .catch((error: Error) => {
          status = killed ? 'killed' : error.message;
        })
    : new Promise((resolve) => setTimeout(resolve, 2000));
  const latencies = await probe(big.then(() => undefined));
  await big;
  const requestMs = performance.now() - started;
  ownLoop.disable();
  const sorted = latencies.map((probe) => probe.ms).sort((a, b) => a - b);
  rows.push({
    route,
    mb,
    status,
    requestMs,
    probes: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? Number.NaN,
    maxCpuMs: Math.max(0, ...latencies.map((probe) => probe.cpuMs)),
    benchLoopMaxMs: ownLoop.max / 1e6,
    peakRssMb: peakRss / 1e6,
  });
  const row = rows.at(-1) as Row;
  console.error(
    `${route} ${mb} MB: ${status} in ${requestMs.toFixed(0)} ms; probe p99 ${row.p99.toFixed(1)} max ${row.max.toFixed(1)} ms`,
  );
}

try {
  await measure('idle', 0, undefined);
  for (const mb of sizesMb) {
    const text = storyText(mb);
    for (const route of routeNames) {
      if (killed) break;
      const spec = ROUTES[route];
      if (!spec) throw new Error(`unknown route ${route}; known: ${Object.keys(ROUTES).join(', ')}`);
      // Ids of the test vocabulary's words (below 300, so valid for every model here), ~4 bytes each in JSON.
      const input = spec.ids ? Array.from({ length: Math.floor((mb * 1e6) / 4) }, (_, i) => 3 + (i % 290)) : text;
      await measure(route, mb, new TextEncoder().encode(JSON.stringify(spec.body(input))));
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  }
} finally {
  clearInterval(watch);
  prober.kill();
  if (!killed) await server.stop();
}

console.log(`\nmodel ${modelPath}, probe GET /api/v1/model every ${probeEvery} ms\n`);
console.log(
  '| route | body | status | request | probes | probe p50 | probe p99 | probe max | server CPU in a probe, max | bench loop max | server RSS peak |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
for (const row of rows) {
  console.log(
    `| ${row.route} | ${row.mb} MB | ${row.status} | ${row.requestMs.toFixed(0)} ms | ${row.probes} | ${row.p50.toFixed(1)} ms | ${row.p99.toFixed(1)} ms | ${row.max.toFixed(1)} ms | ${row.maxCpuMs} ms | ${row.benchLoopMaxMs.toFixed(0)} ms | ${row.peakRssMb.toFixed(0)} MB |`,
  );
}
