/**
 * CPU time that compressing a stream costs per event, in this process: typical Kobold SSE events written one at a
 * time through the compressor a stream uses (`streamCompressor`, flushed per write), against the same events
 * without one. What compression adds to a token is this figure; divide by a token's time to get its share
 * (6 ms a token at 160 t/s on the bench model, 0.5 ms on the tiny demo model).
 *
 *   node --import tsx bench/compress-cost.ts [--events 5000]
 */
import { parseArgs } from 'node:util';
import { type StreamEncoding, streamCompressor } from '../src/server/sse/stream-encoding.ts';

const { values } = parseArgs({ options: { events: { type: 'string', default: '5000' } } });
const n = Number(values.events);
const event = (i: number) => `id: ${i}\nevent: message\ndata: {"token": " once"}\n\n`;

async function perEvent(encoding: StreamEncoding): Promise<{ cpuUs: number; bytes: number }> {
  const stream = streamCompressor(encoding);
  let bytes = 0;
  stream.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
  });
  const before = process.cpuUsage();
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => stream.write(event(i), () => resolve()));
  const cpu = process.cpuUsage(before);
  stream.end();
  return { cpuUs: (cpu.user + cpu.system) / n, bytes: bytes / n };
}

console.log(`${n} events of ${event(1).length} bytes, one at a time; the second of two rounds`);
console.log('encoding  CPU µs/event  bytes/event');
for (const encoding of ['gzip', 'br', 'deflate'] as const) {
  await perEvent(encoding);
  const { cpuUs, bytes } = await perEvent(encoding);
  console.log(`${encoding.padEnd(8)}  ${cpuUs.toFixed(1).padStart(12)}  ${bytes.toFixed(1).padStart(11)}`);
}
