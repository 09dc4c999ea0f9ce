import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { brotliDecompressSync, createBrotliDecompress, createGunzip, createInflate, gunzipSync } from 'node:zlib';
import WebSocket from 'ws';
import type { RunningServer } from '../../src/main.ts';
import { withDeadline } from '../support/deadline.ts';
import { parseLikeLite } from '../support/lite-sse-parser.ts';
import { banEndTokens, postJson, startTestServer } from '../support/test-server.ts';

interface Opened {
  response: IncomingMessage;
  /** Every byte as it came off the wire. */
  wire: Buffer[];
  /** The body as text, decoded as it arrived (each compressed flush decoded when it landed). */
  text: () => string;
  /** Resolves when a decoded piece holding `needle` arrived. */
  waitFor: (needle: string) => Promise<void>;
  done: Promise<void>;
}

/** A POST through node:http, which sends no Accept-Encoding of its own (fetch would, and decode behind our back). */
function open(baseUrl: string, path: string, body: unknown, headers: Record<string, string>): Promise<Opened> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL(path, baseUrl), {
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers },
    });
    req.on('error', reject);
    req.on('response', (response) => {
      const wire: Buffer[] = [];
      let decoded = '';
      const waiters: Array<{ needle: string; resolve: () => void }> = [];
      const encoding = response.headers['content-encoding'];
      const decoder =
        encoding === 'gzip'
          ? createGunzip()
          : encoding === 'br'
            ? createBrotliDecompress()
            : encoding === 'deflate'
              ? createInflate()
              : undefined;
      const take = (piece: Buffer) => {
        decoded += piece.toString('utf8');
        for (const waiter of waiters.splice(0)) {
          if (decoded.includes(waiter.needle)) waiter.resolve();
          else waiters.push(waiter);
        }
      };
      response.on('data', (chunk: Buffer) => {
        wire.push(chunk);
        if (decoder) decoder.write(chunk);
        else take(chunk);
      });
      decoder?.on('data', take);
      const done = new Promise<void>((finish) => {
        response.on('end', () => {
          if (decoder) decoder.end(() => finish());
          else finish();
        });
      });
      resolve({
        response,
        wire,
        text: () => decoded,
        waitFor: (needle) =>
          decoded.includes(needle) ? Promise.resolve() : new Promise((ok) => waiters.push({ needle, resolve: ok })),
        done,
      });
    });
    req.end(payload);
  });
}

const wireBytes = (opened: Opened) => opened.wire.reduce((sum, chunk) => sum + chunk.length, 0);

describe('compressed streams and bodies (real server, real model)', () => {
  let server: RunningServer;
  let plainServer: RunningServer;
  let request: (genkey: string, tokens: number) => Record<string, unknown>;
  before(async () => {
    server = await startTestServer({ contextSize: 1024 });
    plainServer = await startTestServer({ contextSize: 1024, compress: false });
    const bans = banEndTokens(server);
    request = (genkey, tokens) => ({
      prompt: 'Once upon a time',
      max_length: tokens,
      sampler_seed: 11,
      logit_bias: bans,
      genkey,
    });
  });
  after(async () => {
    await server.close();
    await plainServer.close();
  });

  test('a gzip stream is flushed batch by batch: events arrive while the generation runs', async () => {
    const stream = await open(server.url, '/api/extra/generate/stream', request('KCPPgz1', 200), {
      'accept-encoding': 'gzip, deflate',
    });
    assert.equal(stream.response.statusCode, 200);
    assert.equal(stream.response.headers['content-encoding'], 'gzip');
    assert.match(String(stream.response.headers.vary), /accept-encoding/i);
    await withDeadline(stream.waitFor('event: message'), 30_000, 'the first decoded event');
    const check = await postJson(`${server.url}/api/extra/generate/check`, { genkey: 'KCPPgz1' });
    assert.equal(check.body.results[0].status, 'running', 'the first event came out before the end, not with it');
    await withDeadline(stream.done, 60_000, 'the stream to end');
    // The whole wire body is also one valid gzip stream.
    assert.equal(gunzipSync(Buffer.concat(stream.wire)).toString('utf8'), stream.text());
    assert.equal(parseLikeLite(stream.text()).events.at(-1)?.data.finish_reason, 'length');
  });

  test('decoded, a compressed stream is byte for byte the plain one; on the wire it is much smaller', async () => {
    const plain = await open(server.url, '/api/extra/generate/stream', request('KCPPplain', 120), {});
    await withDeadline(plain.done, 60_000, 'the plain stream');
    assert.equal(plain.response.headers['content-encoding'], undefined, 'no Accept-Encoding: plain bytes');
    for (const [encoding, key] of [
      ['gzip', 'KCPPcmpgz'],
      ['br', 'KCPPcmpbr'],
    ] as const) {
      const packed = await open(server.url, '/api/extra/generate/stream', request(key, 120), {
        'accept-encoding': encoding,
      });
      await withDeadline(packed.done, 60_000, `the ${encoding} stream`);
      assert.equal(packed.response.headers['content-encoding'], encoding);
      assert.equal(packed.text(), plain.text(), `${encoding} decodes to the same events`);
      assert.ok(
        wireBytes(packed) < wireBytes(plain) / 2,
        `${encoding}: ${wireBytes(packed)} bytes on the wire against ${wireBytes(plain)} plain`,
      );
      if (encoding === 'br')
        assert.equal(brotliDecompressSync(Buffer.concat(packed.wire)).toString('utf8'), plain.text());
    }
  });

  test('q-values are honoured, and an OpenAI stream is compressed too', async () => {
    const refused = await open(server.url, '/api/extra/generate/stream', request('KCPPq0', 4), {
      'accept-encoding': 'gzip;q=0, br;q=0, identity',
    });
    await refused.done;
    assert.equal(refused.response.headers['content-encoding'], undefined);
    const preferred = await open(server.url, '/api/extra/generate/stream', request('KCPPq1', 4), {
      'accept-encoding': 'gzip;q=0.5, br;q=0.9',
    });
    await preferred.done;
    assert.equal(preferred.response.headers['content-encoding'], 'br');
    const openai = await open(
      server.url,
      '/v1/completions',
      { prompt: 'Once upon a time', max_tokens: 6, stream: true },
      { 'accept-encoding': 'gzip' },
    );
    await openai.done;
    assert.equal(openai.response.headers['content-encoding'], 'gzip');
    assert.match(openai.text(), /data: \[DONE\]\n\n$/);
  });

  test('OpenAI, Anthropic and Ollama streams carry the same text compressed as plain', async () => {
    const cases = [
      {
        path: '/v1/completions',
        body: { prompt: 'Once upon a time', max_tokens: 24, seed: 4, stream: true },
        text: (raw: string) =>
          raw
            .split('\n')
            .filter((l) => l.startsWith('data: {'))
            .map((l) => JSON.parse(l.slice(6)).choices[0]?.text ?? '')
            .join(''),
      },
      {
        path: '/v1/messages',
        body: { model: 'x', max_tokens: 24, stream: true, messages: [{ role: 'user', content: 'Hi' }], top_k: 1 },
        text: (raw: string) =>
          raw
            .split('\n')
            .filter((l) => l.startsWith('data: {'))
            .map((l) => JSON.parse(l.slice(6)))
            .filter((e) => e.type === 'content_block_delta')
            .map((e) => e.delta.text)
            .join(''),
      },
      {
        path: '/api/generate',
        body: { model: 'x', prompt: 'Once upon a time', raw: true, options: { num_predict: 24, seed: 4 } },
        text: (raw: string) =>
          raw
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l).response ?? '')
            .join(''),
      },
    ];
    for (const { path, body, text } of cases) {
      const plain = await open(server.url, path, body, {});
      await withDeadline(plain.done, 60_000, `plain ${path}`);
      for (const encoding of ['gzip', 'br', 'deflate']) {
        const packed = await open(server.url, path, body, { 'accept-encoding': encoding });
        await withDeadline(packed.done, 60_000, `${encoding} ${path}`);
        assert.equal(packed.response.headers['content-encoding'], encoding, path);
        assert.ok(text(plain.text()).length > 0, path);
        assert.equal(text(packed.text()), text(plain.text()), `${encoding} ${path}`);
      }
    }
  });

  test('JSON over 1 KB is compressed for a client that asks; small JSON is not', async () => {
    const get = (url: string, headers: Record<string, string>) =>
      new Promise<{ headers: IncomingMessage['headers']; body: Buffer }>((resolve, reject) => {
        httpRequest(url, { agent: false, headers }, (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (c: Buffer) => chunks.push(c));
          response.on('end', () => resolve({ headers: response.headers, body: Buffer.concat(chunks) }));
        })
          .on('error', reject)
          .end();
      });
    const doc = await get(`${server.url}/api/openapi.json`, { 'accept-encoding': 'gzip' });
    assert.equal(doc.headers['content-encoding'], 'gzip');
    assert.ok(JSON.parse(gunzipSync(doc.body).toString('utf8')).paths['/api/v1/generate']);
    const small = await get(`${server.url}/api/v1/model`, { 'accept-encoding': 'gzip' });
    assert.equal(small.headers['content-encoding'], undefined);
    assert.match(JSON.parse(small.body.toString('utf8')).result, /^koboldcpp\//);
    const off = await get(`${plainServer.url}/api/openapi.json`, { 'accept-encoding': 'gzip' });
    assert.equal(off.headers['content-encoding'], undefined, '--compress off: plain');
  });

  test('--compress off streams plain bytes whatever the client accepts', async () => {
    const stream = await open(plainServer.url, '/api/extra/generate/stream', request('KCPPoff', 4), {
      'accept-encoding': 'gzip, br',
    });
    await stream.done;
    assert.equal(stream.response.headers['content-encoding'], undefined);
    assert.ok(parseLikeLite(stream.text()).events.length > 0);
  });

  test('the WebSocket negotiates permessage-deflate when the client offers it, and not with --compress off', async () => {
    const extensionsOf = async (base: string) => {
      const socket = new WebSocket(`${base.replace('http', 'ws')}/api/extra/generate/ws`, { perMessageDeflate: true });
      await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
      const extensions = socket.extensions;
      socket.close();
      return extensions;
    };
    assert.match(await extensionsOf(server.url), /permessage-deflate/);
    assert.equal(await extensionsOf(plainServer.url), '');
  });
});
