import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { brotliDecompressSync, constants, gunzipSync } from 'node:zlib';
import type { RunningServer } from '../../src/main.ts';
import { withDeadline } from '../support/deadline.ts';
import { slowTestModelPath } from '../support/test-model.ts';
import { banEndTokens, startTestServer } from '../support/test-server.ts';

interface Reader {
  /** When each event id was first readable, decoded, on this side (performance.now()). */
  seenAt: Map<number, number>;
  /** When the response head arrived: ids seen before the other reader joined are replays, not live. */
  headAt: number;
  done: Promise<void>;
}

/** A Kobold stream read through node:http (which asks for no encoding unless told), decoded as it lands. */
function read(baseUrl: string, body: unknown, encoding: 'identity' | 'gzip' | 'br'): Promise<Reader> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL('/api/extra/generate/stream', baseUrl), {
      method: 'POST',
      agent: false,
      headers: {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(payload),
        'accept-encoding': encoding,
      },
    });
    req.on('error', reject);
    req.on('response', (response) => {
      const headAt = performance.now();
      assert.equal(response.headers['content-encoding'], encoding === 'identity' ? undefined : encoding);
      const seenAt = new Map<number, number>();
      let text = '';
      const take = (piece: Buffer) => {
        const now = performance.now();
        text += piece.toString('utf8');
        for (const match of text.matchAll(/^id: (\d+)$/gm)) {
          const id = Number(match[1]);
          if (!seenAt.has(id)) seenAt.set(id, now);
        }
        // Only the unfinished tail can hold an id not yet seen.
        text = text.slice(Math.max(0, text.lastIndexOf('\n\n')));
      };
      // Decoded synchronously as each chunk lands (the whole body so far, flushed, not finished): an
      // asynchronous decompressor would add its thread-pool hop to the figure, which is the server's.
      const wire: Buffer[] = [];
      let decodedBytes = 0;
      const decode = (body: Buffer) =>
        encoding === 'gzip'
          ? gunzipSync(body, { finishFlush: constants.Z_SYNC_FLUSH })
          : brotliDecompressSync(body, { finishFlush: constants.BROTLI_OPERATION_FLUSH });
      response.on('data', (chunk: Buffer) => {
        if (encoding === 'identity') return take(chunk);
        wire.push(chunk);
        const decoded = decode(Buffer.concat(wire));
        take(decoded.subarray(decodedBytes));
        decodedBytes = decoded.length;
      });
      const done = new Promise<void>((finish) => response.on('end', () => finish()));
      resolve({ seenAt, headAt, done });
    });
    req.end(payload);
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

// Two readers of one generation at once, one plain and one compressed, on the same loopback and event loop: the
// difference in when each event becomes readable is what compression adds to a token's latency.
describe('compression adds no latency to an event (real server, real model)', () => {
  let server: RunningServer;
  let bans: Record<string, number>;
  before(async () => {
    server = await startTestServer({ modelPath: slowTestModelPath(), contextSize: 2048 });
    bans = banEndTokens(server);
  });
  after(async () => server.close());

  for (const encoding of ['gzip', 'br'] as const) {
    test(`${encoding}: each event is readable decoded within milliseconds (median) of the plain stream's copy`, async (t) => {
      const body = {
        prompt: 'Once upon a time',
        max_length: 400,
        sampler_seed: 3,
        logit_bias: bans,
        genkey: `KCPPlat-${encoding}`,
      };
      const plain = await read(server.url, body, 'identity');
      // The same request again attaches to the running generation: it replays what it missed, then reads live.
      const compressed = await read(server.url, body, encoding);
      await withDeadline(Promise.all([plain.done, compressed.done]), 120_000, 'both streams to end');

      const live = [...plain.seenAt].filter(([id, at]) => at > compressed.headAt + 5 && compressed.seenAt.has(id));
      assert.ok(live.length >= 100, `${live.length} events read live by both`);
      const lag = live.map(([id, at]) => (compressed.seenAt.get(id) ?? Number.NaN) - at);
      const sorted = [...lag].sort((a, b) => a - b);
      const p90 = sorted[Math.floor(sorted.length * 0.9)] ?? Number.NaN;
      const summary = `median ${median(lag).toFixed(3)} ms, p90 ${p90.toFixed(3)} ms over ${lag.length} events`;
      // Quiet, the median is 0.4-0.6 ms (docs/streaming.md); under a full test run on 2 cores the server's
      // compressor waits for the thread pool and it reached 3.3 ms. A stream that holds events back until a
      // buffer fills lags by hundreds of milliseconds, so this bound still catches the failure that matters.
      assert.ok(Math.abs(median(lag)) <= 5, summary);
      assert.equal(compressed.seenAt.size, plain.seenAt.size, 'the compressed reader saw every event');
      t.diagnostic(`${encoding}: ${summary}`);
    });
  }
});
