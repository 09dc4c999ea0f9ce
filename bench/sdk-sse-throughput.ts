/**
 * SDK SSE parsing throughput: a synthetic OpenAI-format stream (OpenRouter-style comments, one `data:` chunk
 * per token, usage, `[DONE]`) is fed through `createClient('openai').stream()` — the same path a real stream
 * takes: bytes → UTF-8 decode → eventsource-parser → JSON.parse → adapter → driver → TextStream events —
 * with a `fetch` that serves the bytes from memory, so the figure is the SDK's cost, not the network's.
 * Also prints the SseReader alone (decode + SSE parse, no JSON) for comparison.
 *
 *   node --import tsx bench/sdk-sse-throughput.ts [megabytes=24] [chunkKiB=16]
 */
import { createClient, SseReader } from '../src/client/index.ts';

const targetMb = Number(process.argv[2] ?? 24);
const chunkBytes = Number(process.argv[3] ?? 16) * 1024;

function syntheticStream(targetBytes: number): { bytes: Uint8Array; tokens: number; text: string } {
  const words = ['the ', 'quiet ', 'café ', 'kindling ', '日本 ', 'ember ', '🔥 ', 'river '];
  const parts: string[] = [': OPENROUTER PROCESSING\n\n'];
  let size = 0;
  let tokens = 0;
  let text = '';
  while (size < targetBytes) {
    const token = words[tokens % words.length] ?? 'x ';
    const chunk = {
      id: 'gen-1700000000-abc',
      provider: 'Bench',
      model: 'bench/model',
      object: 'chat.completion.chunk',
      created: 1700000000,
      choices: [{ index: 0, delta: { role: 'assistant', content: token }, finish_reason: null, logprobs: null }],
    };
    const frame = `data: ${JSON.stringify(chunk)}\n\n`;
    parts.push(frame);
    size += frame.length;
    text += token;
    tokens += 1;
  }
  parts.push(
    `data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`,
  );
  parts.push(
    `data: ${JSON.stringify({ id: 'x', choices: [], usage: { prompt_tokens: 5, completion_tokens: tokens, total_tokens: tokens + 5 } })}\n\n`,
  );
  parts.push('data: [DONE]\n\n');
  return { bytes: new TextEncoder().encode(parts.join('')), tokens, text };
}

function memoryFetch(bytes: Uint8Array): typeof fetch {
  return async () => {
    let offset = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (offset >= bytes.length) {
          controller.close();
          return;
        }
        controller.enqueue(bytes.subarray(offset, offset + chunkBytes));
        offset += chunkBytes;
      },
    });
    return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } });
  };
}

interface Timing {
  wallMs: number;
  /** User + system CPU time of this process: on a shared, loaded machine this is the steadier figure. */
  cpuMs: number;
}

function cpuMsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

async function timeSdk(bytes: Uint8Array, expected: string): Promise<Timing> {
  const client = createClient('openai', {
    baseUrl: 'http://bench.invalid',
    model: 'bench/model',
    fetch: memoryFetch(bytes),
  });
  const cpu = process.cpuUsage();
  const started = performance.now();
  const stream = client.stream({ messages: [{ role: 'user', content: 'go' }] });
  let events = 0;
  for await (const event of stream) if (event.type === 'text') events += 1;
  const result = await stream.result;
  const timing = { wallMs: performance.now() - started, cpuMs: cpuMsSince(cpu) };
  if (result.text !== expected || events === 0) throw new Error('benchmark stream was not parsed correctly');
  return timing;
}

function timeReader(bytes: Uint8Array): Timing {
  let events = 0;
  const reader = new SseReader({
    onEvent: () => {
      events += 1;
    },
  });
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < bytes.length; i += chunkBytes) reader.push(bytes.subarray(i, i + chunkBytes));
  reader.end();
  const timing = { wallMs: performance.now() - started, cpuMs: cpuMsSince(cpu) };
  if (events === 0) throw new Error('no events');
  return timing;
}

const { bytes, tokens, text } = syntheticStream(targetMb * 1024 * 1024);
const mb = bytes.length / (1024 * 1024);
console.log(`stream: ${mb.toFixed(1)} MiB, ${tokens} chunks, ${chunkBytes / 1024} KiB reads, node ${process.version}`);
await timeSdk(bytes, text); // warm-up: JIT and first-use costs
const sdkRuns: Timing[] = [];
const readerRuns: Timing[] = [];
for (let run = 0; run < 3; run++) {
  sdkRuns.push(await timeSdk(bytes, text));
  readerRuns.push(timeReader(bytes));
}
const rate = (ms: number) => (mb / (ms / 1000)).toFixed(0);
const line = (label: string, runs: Timing[]) => {
  const wall = runs.map((r) => r.wallMs);
  const cpu = runs.map((r) => r.cpuMs);
  const events = (tokens / Math.min(...wall)) * 1000;
  console.log(
    `${label}: wall ${wall.map(rate).join(', ')} MiB/s (best ${rate(Math.min(...wall))}, ${(events / 1e6).toFixed(2)} M events/s); per CPU-second ${cpu.map(rate).join(', ')} MiB/s`,
  );
};
line('SDK stream() end to end (decode + SSE + JSON + events)', sdkRuns);
line('SseReader alone (decode + SSE parse)', readerRuns);
