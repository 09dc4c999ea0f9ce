/**
 * What a stream costs on the wire, per generated token, plain and compressed (gzip, br, deflate), for Kobold SSE,
 * OpenAI SSE and Ollama NDJSON; and what compressing costs the server: the server process's CPU time per token
 * (from /proc, so other load on the machine does not enter it the way it enters wall-clock speed), and its own
 * decode speed (`last_eval_speed`). The bundled demo model writes real text, so the ratios are those of stories,
 * not of random tokens. Each round runs every encoding once, in turn.
 *
 *   node --import tsx bench/wire-bytes.ts [--threads 2] [--runs 4] [--tokens 120] [--model models/demo.gguf]
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { median } from './bench-model.ts';
import { singleSlotServerArgs, startServerProcess } from './server-process.ts';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    runs: { type: 'string', default: '4' },
    tokens: { type: 'string', default: '120' },
    model: { type: 'string', default: join(import.meta.dirname, '..', 'models', 'demo.gguf') },
  },
});
const tokens = Number(values.tokens);
const server = await startServerProcess(singleSlotServerArgs(values.model, Number(values.threads)));

const bodies = {
  'kobold sse': {
    path: '/api/extra/generate/stream',
    body: { prompt: 'Once upon a time', max_length: tokens, sampler_seed: 3, ban_eos_token: true },
  },
  'openai sse': {
    path: '/v1/completions',
    body: { prompt: 'Once upon a time', max_tokens: tokens, seed: 3, stream: true, logit_bias: {} },
  },
  'ollama ndjson': {
    path: '/api/generate',
    body: { prompt: 'Once upon a time', raw: true, options: { num_predict: tokens, seed: 3 } },
  },
} as const;
const encodings = ['identity', 'gzip', 'br', 'deflate'] as const;
const pid = server.child.pid ?? 0;
/** The server process's user + system CPU time, in ms (clock ticks of 10 ms). */
const cpuMs = () => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
};

/** Bytes on the wire and the server's decode speed for one request. */
function measure(path: string, body: unknown, encoding: string): Promise<{ bytes: number }> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}${path}`, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/json', 'accept-encoding': encoding },
    });
    req.on('error', reject);
    req.on('response', (response) => {
      let bytes = 0;
      response.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      response.on('end', () => resolve({ bytes }));
    });
    req.end(payload);
  });
}

async function evalSpeed(): Promise<number> {
  const perf = (await (await fetch(`${server.url}/api/extra/perf`)).json()) as { last_eval_speed: number };
  return perf.last_eval_speed;
}

const bytes = new Map<string, number[]>();
const speeds = new Map<string, number[]>();
const cpu = new Map<string, number[]>();
try {
  for (let run = 0; run < Number(values.runs); run++) {
    for (const [name, { path, body }] of Object.entries(bodies)) {
      for (const encoding of encodings) {
        const before = cpuMs();
        const { bytes: n } = await measure(path, body, encoding);
        const key = `${name} ${encoding}`;
        cpu.set(key, [...(cpu.get(key) ?? []), (cpuMs() - before) / tokens]);
        bytes.set(key, [...(bytes.get(key) ?? []), n]);
        speeds.set(key, [...(speeds.get(key) ?? []), await evalSpeed()]);
      }
    }
  }
  console.log(`${tokens} tokens a request, ${values.runs} runs, medians`);
  console.log('stream           encoding   bytes  bytes/token  server CPU ms/token  server decode t/s');
  for (const key of bytes.keys()) {
    const [name, encoding] = [key.slice(0, key.lastIndexOf(' ')), key.slice(key.lastIndexOf(' ') + 1)];
    const b = median(bytes.get(key) ?? []);
    console.log(
      `${name.padEnd(16)} ${encoding.padEnd(9)} ${String(b).padStart(6)}  ${(b / tokens).toFixed(1).padStart(11)}  ${median(
        cpu.get(key) ?? [],
      )
        .toFixed(2)
        .padStart(19)}  ${median(speeds.get(key) ?? [])
        .toFixed(1)
        .padStart(17)}`,
    );
  }
} finally {
  await server.stop();
}
