/**
 * Soak: many clients mixing every kind of traffic against one server for a bounded time, then a quiet period and
 * SIGTERM. Loopback only; it stops by itself (after `--minutes`, and each request has a deadline).
 *
 * The server is `kindling serve` in its own process (`--parallel 4 --queue 16` by default, on the tiny test model
 * unless `--model`), watched by the RSS watchdog of test/support/server-process.ts (SIGKILL past
 * `--rss-limit-mb`). Each of `--clients` loops picks, at random: a full stream in each protocol (Kobold SSE,
 * OpenAI, Anthropic, Ollama NDJSON), a sync generation, an abort of its own stream, a disconnect mid-stream, a
 * bad request, or a cut stream resumed with `Last-Event-ID` (its text checked against /check).
 *
 * Prints requests by outcome, unexpected 5xx (goal 0; a 503 with Retry-After from a full queue is expected), slots
 * still busy after the quiet period (goal 0), RSS after warm-up and at the end (goal: growth under 10 %), and how
 * SIGTERM ended the server (goal: exit 0 within the shutdown grace + 2 s). Exit code 1 when a goal is missed.
 *
 *   node --import tsx bench/soak.ts [--minutes 10] [--clients 64] [--parallel 4] [--queue 16] [--seed 1]
 *     [--model file.gguf] [--rss-limit-mb 1536] [--grace-seconds 10] [--warmup-seconds 75] [-- serve flags]
 */
import { parseArgs } from 'node:util';
import { seededRandom } from '../src/gguf/seeded-random.ts';
import { sleep } from '../test/support/deadline.ts';
import { type Protocol, parseSse, streamEndProblem } from '../test/support/protocol-envelope.ts';
import { DEFAULT_RSS_LIMIT_MB, KindlingProcess } from '../test/support/server-process.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    minutes: { type: 'string', default: '10' },
    clients: { type: 'string', default: '64' },
    parallel: { type: 'string', default: '4' },
    queue: { type: 'string', default: '16' },
    seed: { type: 'string', default: '1' },
    model: { type: 'string' },
    'rss-limit-mb': { type: 'string', default: String(DEFAULT_RSS_LIMIT_MB) },
    'grace-seconds': { type: 'string', default: '10' },
    'warmup-seconds': { type: 'string', default: '75' },
  },
});
const minutes = Number(values.minutes);
if (!(minutes > 0) || Number(values['warmup-seconds']) >= minutes * 60) {
  console.error('soak: --minutes must be > 0 and longer than --warmup-seconds');
  process.exit(2);
}
const clients = Number(values.clients);
const graceMs = Number(values['grace-seconds']) * 1000;
const REQUEST_DEADLINE_MS = 60_000;
const QUIET_MS = 30_000;

const outcomes = new Map<string, number>();
const unexpected: string[] = [];
const count = (action: string, outcome: string, detail?: string) => {
  const key = `${action.padEnd(16)} ${outcome}`;
  outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
  if (detail && unexpected.length < 20) unexpected.push(`${action}: ${outcome}: ${detail.slice(0, 300)}`);
};

const server = await KindlingProcess.start({
  args: [
    '--parallel',
    values.parallel,
    '--queue',
    values.queue,
    '--contextsize',
    '512',
    ...(values.model ? ['--model', values.model] : []),
    ...positionals,
  ],
  rssLimitMb: Number(values['rss-limit-mb']),
});
const base = server.url;
console.log(
  `soak: ${clients} clients for ${minutes} min against ${base} (--parallel ${values.parallel} --queue ${values.queue}), seed ${values.seed}`,
);

interface Streamed {
  status: number;
  text: string;
  headers: Headers;
}

/**
 * POSTs and reads the answer; `cutAfter(text)` returning true cuts the connection there (a client leaving).
 * A deadline aborts it.
 */
async function post(
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
  cutAfter?: (text: string) => boolean,
): Promise<Streamed & { cut: boolean }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error('deadline')), REQUEST_DEADLINE_MS);
  try {
    const response = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
      signal: controller.signal,
    });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      if (cutAfter?.(text)) {
        controller.abort(new Error('cut'));
        await reader.cancel().catch(() => {});
        return { status: response.status, text, headers: response.headers, cut: true };
      }
    }
    return { status: response.status, text, headers: response.headers, cut: false };
  } finally {
    clearTimeout(timer);
  }
}

const PROMPTS = ['Once upon a time', 'The little fox', 'Sam had a kite', 'In the morning'];
const streamRequests: Record<Protocol, (rand: () => number) => [string, Record<string, unknown>]> = {
  kobold: (rand) => [
    '/api/extra/generate/stream',
    { prompt: PROMPTS[Math.floor(rand() * 4)], max_length: 8 + Math.floor(rand() * 24) },
  ],
  openai: (rand) => [
    '/v1/chat/completions',
    {
      messages: [{ role: 'user', content: PROMPTS[Math.floor(rand() * 4)] }],
      max_tokens: 8 + Math.floor(rand() * 24),
      stream: true,
    },
  ],
  anthropic: (rand) => [
    '/v1/messages',
    {
      model: 'tiny',
      max_tokens: 8 + Math.floor(rand() * 24),
      messages: [{ role: 'user', content: PROMPTS[Math.floor(rand() * 4)] }],
      stream: true,
    },
  ],
  ollama: (rand) => [
    '/api/generate',
    {
      model: 'tiny',
      prompt: PROMPTS[Math.floor(rand() * 4)],
      stream: true,
      options: { num_predict: 8 + Math.floor(rand() * 24) },
    },
  ],
};
const BAD_REQUESTS: Array<[string, string]> = [
  ['/api/v1/generate', '{"prompt": "x", "max_length": '],
  ['/api/v1/generate', '{"prompt": "x", "max_length": "many"}'],
  ['/v1/chat/completions', '{"messages": "hi"}'],
  ['/v1/messages', '{"model": "x", "messages": [{"role": "user", "content": "hi"}]}'],
  ['/api/chat', '{"model": "x", "messages": 5}'],
  ['/api/extra/detokenize', '{"ids": [999999999]}'],
];

/** Classifies a finished answer: busy (503 + Retry-After), rejected (4xx), 5xx, or a stream's truthful end. */
function classify(action: string, protocol: Protocol, response: Streamed & { cut?: boolean }, expectError = false) {
  if (response.status === 503 && response.headers.get('retry-after')) return count(action, 'busy 503');
  if (response.status >= 500) return count(action, `unexpected ${response.status}`, response.text);
  if (response.status >= 400)
    return count(
      action,
      expectError ? 'rejected 4xx' : `unexpected ${response.status}`,
      expectError ? undefined : response.text,
    );
  if (expectError) return count(action, 'bad request accepted (200)');
  if (response.cut) return count(action, 'cut by the client');
  const contentType = response.headers.get('content-type') ?? '';
  if (!/event-stream|ndjson/.test(contentType)) return count(action, 'ok');
  const problem = streamEndProblem(protocol, response.text);
  if (problem) return count(action, 'untruthful end', problem);
  if (/"status":\s*5\d\d|server_error|api_error|model_error/.test(response.text))
    return count(action, 'unexpected 5xx inside a stream', response.text.slice(-300));
  count(action, 'ok');
}

const koboldTokens = (text: string) =>
  parseSse(text)
    .filter((event) => event.event === 'message')
    .map((event) => {
      try {
        return (JSON.parse(event.data) as { token?: string }).token ?? '';
      } catch {
        return '';
      }
    })
    .join('');
const lastId = (text: string) => parseSse(text).findLast((event) => event.id !== undefined)?.id;
const retryDelay = (rand: () => number) => 200 + rand() * 800;

async function client(index: number, endAt: number): Promise<void> {
  const rand = seededRandom(Number(values.seed) * 1000 + index);
  let n = 0;
  while (Date.now() < endAt) {
    n++;
    const genkey = `KCPP${index * 100_000 + n}`;
    const dice = rand();
    try {
      if (dice < 0.4) {
        const protocol = (['kobold', 'openai', 'anthropic', 'ollama'] as const)[Math.floor(rand() * 4)] ?? 'kobold';
        const [path, body] = streamRequests[protocol](rand);
        const response = await post(path, body);
        classify(`stream ${protocol}`, protocol, response);
        if (response.status === 503) await sleep(retryDelay(rand));
      } else if (dice < 0.5) {
        const response = await post('/api/v1/generate', { prompt: PROMPTS[n % 4], max_length: 8 });
        classify('sync kobold', 'kobold', response);
        if (response.status === 503) await sleep(retryDelay(rand));
      } else if (dice < 0.6) {
        // Abort our own stream after its first token; it must end with a final event.
        let aborted = false;
        const response = await post(
          '/api/extra/generate/stream',
          { prompt: PROMPTS[n % 4], max_length: 64, genkey },
          {},
          (text) => {
            if (!aborted && /"token": "[^"]/.test(text)) {
              aborted = true;
              void post('/api/extra/abort', { genkey }).catch(() => {});
            }
            return false;
          },
        );
        classify('abort', 'kobold', response);
      } else if (dice < 0.7) {
        const protocol = (['kobold', 'openai', 'anthropic', 'ollama'] as const)[Math.floor(rand() * 4)] ?? 'kobold';
        const [path, body] = streamRequests[protocol](rand);
        const response = await post(path, body, {}, (text) => text.length > 60 + rand() * 200);
        classify(`disconnect ${protocol}`, protocol, response);
      } else if (dice < 0.8) {
        const [path, body] = BAD_REQUESTS[Math.floor(rand() * BAD_REQUESTS.length)] ?? BAD_REQUESTS[0]!;
        const response = await post(path, body);
        classify('bad request', 'kobold', response, true);
      } else {
        await resume(genkey, rand);
      }
    } catch (error) {
      count(
        'any',
        'network error',
        error instanceof Error ? `${error.message} ${String(error.cause ?? '')}` : String(error),
      );
      await sleep(retryDelay(rand));
    }
  }
}

/** A Kobold stream cut after a few events, resumed with Last-Event-ID; the joined text must equal /check's. */
async function resume(genkey: string, rand: () => number): Promise<void> {
  const body = { prompt: PROMPTS[Math.floor(rand() * 4)], max_length: 16 + Math.floor(rand() * 16), genkey };
  const cutAt = 1 + Math.floor(rand() * 4);
  const first = await post('/api/extra/generate/stream', body, {}, (text) => parseSse(text).length >= cutAt);
  if (first.status !== 200) return classify('resume', 'kobold', first);
  const id = lastId(first.text);
  if (!first.cut || id === undefined) return classify('resume', 'kobold', first);
  // Cut just after the final event: the client has everything and would not reconnect.
  if (streamEndProblem('kobold', first.text) === undefined) return count('resume', 'ended before the cut');
  const second = await post('/api/extra/generate/stream', body, { 'last-event-id': id });
  if (second.status !== 200) return classify('resume', 'kobold', second);
  const problem = streamEndProblem('kobold', second.text);
  if (problem) return count('resume', 'untruthful end', problem);
  const joined = koboldTokens(first.text) + koboldTokens(second.text);
  const check = await post('/api/extra/generate/check', { genkey });
  const expected = (JSON.parse(check.text) as { results?: Array<{ text?: string }> }).results?.[0]?.text;
  if (expected !== joined)
    return count(
      'resume',
      'text lost or duplicated',
      `joined ${JSON.stringify(joined)} vs check ${JSON.stringify(expected)}`,
    );
  count('resume', 'ok');
}

interface Perf {
  slots_busy?: number;
  queue?: number;
}
const perf = async (): Promise<Perf> => {
  const response = await fetch(`${base}/api/extra/perf`, { signal: AbortSignal.timeout(5000) });
  return (await response.json()) as Perf;
};

const started = Date.now();
const endAt = started + minutes * 60_000;
// Finished generations stay checkable for --stream-grace (60 s): the baseline is taken once that many are held.
const warmupMs = Number(values['warmup-seconds']) * 1000;
let rssAfterWarmup: number | undefined;
const warmup = setTimeout(() => {
  rssAfterWarmup = server.rssMb();
}, warmupMs);
const progress = setInterval(() => {
  const total = [...outcomes.values()].reduce((a, b) => a + b, 0);
  console.log(
    `  ${Math.round((Date.now() - started) / 1000)} s: ${total} requests, RSS ${Math.round(server.rssMb() ?? 0)} MB`,
  );
}, 30_000);
await Promise.all(Array.from({ length: clients }, (_, index) => client(index, endAt)));
clearInterval(progress);
clearTimeout(warmup);

// Quiet period: every slot and queue place must come back (resume windows and stream grace run out meanwhile).
let after: Perf = {};
let quietMs = 0;
const quietStart = Date.now();
for (;;) {
  try {
    after = await perf();
  } catch (error) {
    after = {};
    console.log(`  /api/extra/perf failed: ${error instanceof Error ? error.message : error}`);
  }
  quietMs = Date.now() - quietStart;
  if ((after.slots_busy === 0 && after.queue === 0) || quietMs > QUIET_MS || !server.running) break;
  await sleep(500);
}
const rssEnd = server.rssMb();
const health = server.problem();
const stopped = await server.stop(graceMs + 10_000);

const total = [...outcomes.values()].reduce((a, b) => a + b, 0);
console.log(`\n${total} requests in ${((Date.now() - started) / 1000).toFixed(0)} s, by outcome:`);
for (const [key, value] of [...outcomes].sort()) console.log(`  ${key.padEnd(48)} ${value}`);
const fiveHundreds = [...outcomes]
  .filter(([key]) => /unexpected 5|network error|untruthful|lost or duplicated/.test(key))
  .reduce((sum, [, value]) => sum + value, 0);
const leaked = (after.slots_busy ?? Number.NaN) + (after.queue ?? Number.NaN);
const growth = rssAfterWarmup && rssEnd ? (rssEnd - rssAfterWarmup) / rssAfterWarmup : Number.NaN;
const goals = [
  [`unexpected 5xx, network errors, untruthful ends, resume mismatches: ${fiveHundreds}`, fiveHundreds === 0],
  [
    `slots busy + queued after ${(quietMs / 1000).toFixed(1)} s quiet: ${Number.isNaN(leaked) ? 'unknown (perf does not show slots_busy/queue)' : leaked}`,
    leaked === 0,
  ],
  [
    `RSS after ${warmupMs / 1000} s warm-up ${Math.round(rssAfterWarmup ?? 0)} MB, at the end ${Math.round(rssEnd ?? 0)} MB (${(growth * 100).toFixed(1)} %), peak ${Math.round(server.peakRssMb)} MB`,
    growth < 0.1,
  ],
  [
    `SIGTERM: exit code ${stopped.code}${stopped.signal ? ` (signal ${stopped.signal})` : ''} after ${stopped.ms} ms${stopped.forced ? ', needed SIGKILL' : ''}`,
    stopped.code === 0 && !stopped.forced && stopped.ms <= graceMs + 2000,
  ],
  [`server health: ${health ?? 'ok'}`, health === undefined],
] as const;
console.log('');
for (const [line, met] of goals) console.log(`${met ? 'ok    ' : 'MISSED'} ${line}`);
if (unexpected.length > 0) console.log(`\nfirst unexpected outcomes:\n  ${unexpected.join('\n  ')}`);
process.exit(goals.every(([, met]) => met) ? 0 : 1);
