import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { createClient, NetworkError, type StreamEvent } from '../../src/client/index.ts';
import { createNodeFetch, type NodeFetch } from '../../src/client-node/node-fetch.ts';
import type { RunningServer } from '../../src/main.ts';
import { withDeadline } from '../support/deadline.ts';
import { runCli, SDK_CLI } from '../support/run-cli.ts';
import { slowTestModelPath } from '../support/test-model.ts';
import { startTestServer } from '../support/test-server.ts';

const TLS = join(import.meta.dirname, '..', 'fixtures', 'tls');
const ca = readFileSync(join(TLS, 'localhost-cert.pem'));

async function textOf(events: AsyncIterable<StreamEvent>): Promise<string> {
  let text = '';
  for await (const event of events) if (event.type === 'text') text += event.text;
  return text;
}

/**
 * The SDK in Node over HTTPS: `createNodeFetch()` offers HTTP/2, and against our server with `--tls-cert` every
 * stream of a client shares one connection, where Node's global fetch (HTTP/1.1) opens one socket per stream.
 */
describe("the SDK's Node transport over HTTPS (real server, real model)", () => {
  let server: RunningServer;
  const connections: TLSSocket[] = [];
  const pools: NodeFetch[] = [];
  const pool = (options: Parameters<typeof createNodeFetch>[0]) => {
    const made = createNodeFetch(options);
    pools.push(made);
    return made.fetch;
  };
  before(async () => {
    server = await startTestServer({
      modelPath: slowTestModelPath(),
      parallel: 4,
      tls: { certPath: join(TLS, 'localhost-cert.pem'), keyPath: join(TLS, 'localhost-key.pem') },
    });
    server.app.server.on('secureConnection', (socket: TLSSocket) => connections.push(socket));
  });
  after(async () => {
    await Promise.all(pools.map((made) => made.close()));
    await server.close();
  });

  test('eight Kobold streams and an OpenAI stream at once go over one HTTP/2 connection, each with its text', async () => {
    connections.length = 0;
    const fetch = pool({ ca });
    const kobold = createClient('kobold', { baseUrl: server.url, fetch, koboldTransport: 'sse' });
    const openai = createClient('openai', { baseUrl: server.url, fetch, model: 'any' });
    const texts = await withDeadline(
      Promise.all([
        ...Array.from({ length: 8 }, (_, i) =>
          textOf(kobold.stream({ prompt: `Story ${i}:`, maxTokens: 12, seed: i })),
        ),
        textOf(openai.stream({ prompt: 'Story 9:', maxTokens: 12, seed: 9 })),
      ]),
      60_000,
      'nine streams',
    );
    for (const text of texts) assert.ok(text.length > 0, 'every stream carries text');
    assert.deepEqual(
      connections.map((socket) => socket.alpnProtocol),
      ['h2'],
      'one connection, and HTTP/2 was chosen',
    );
  });

  test('a stream left early over HTTP/2 is cancelled on the server, and the connection keeps serving', async () => {
    connections.length = 0;
    const fetch = pool({ ca });
    const kobold = createClient('kobold', { baseUrl: server.url, fetch, koboldTransport: 'sse' });
    const stream = kobold.stream({ prompt: 'A long one:', maxTokens: 2000, seed: 1 });
    let tokens = 0;
    for await (const event of stream) if (event.type === 'text' && ++tokens === 3) break;
    await withDeadline(
      (async () => {
        while (server.context.scheduler.busySlots > 0) await new Promise((resolve) => setTimeout(resolve, 20));
      })(),
      10_000,
      'the slot freed after the stream was left',
    );
    const after = await kobold.generate({ prompt: 'Short:', maxTokens: 4, seed: 2 });
    assert.ok(after.text.length >= 0);
    assert.equal(connections.length, 1, 'the cancel and the next request used the same connection');
    assert.equal(connections[0]?.alpnProtocol, 'h2');
  });

  test('with http2: false the same client speaks HTTP/1.1 over TLS', async () => {
    connections.length = 0;
    const fetch = pool({ ca, http2: false });
    const kobold = createClient('kobold', { baseUrl: server.url, fetch, koboldTransport: 'sse' });
    const text = await textOf(kobold.stream({ prompt: 'Story:', maxTokens: 6, seed: 3 }));
    assert.ok(text.length > 0);
    assert.ok(connections.length >= 1);
    for (const socket of connections) assert.equal(socket.alpnProtocol, 'http/1.1');
  });

  test('a certificate it was not told to trust is refused with a NetworkError naming the cause', async () => {
    const fetch = pool({});
    const kobold = createClient('kobold', { baseUrl: server.url, fetch, retry: { maxRetries: 0 } });
    await assert.rejects(kobold.generate({ prompt: 'x', maxTokens: 1 }), (error: Error) => {
      assert.ok(error instanceof NetworkError, String(error));
      assert.match(error.message, /certificate/i);
      return true;
    });
  });

  test('the CLI streams from the HTTPS server over HTTP/2, trusting the certificate through NODE_EXTRA_CA_CERTS', async () => {
    connections.length = 0;
    const run = await runCli(SDK_CLI, ['generate', '--url', server.url, '--max-tokens', '5', '--seed', '4', 'Once'], {
      env: { NODE_EXTRA_CA_CERTS: join(TLS, 'localhost-cert.pem') },
    });
    assert.equal(run.code, 0, run.stderr);
    assert.ok(run.stdout.length > 0);
    assert.ok(connections.length >= 1);
    assert.ok(
      connections.every((socket) => socket.alpnProtocol === 'h2'),
      'every connection chose HTTP/2',
    );
  });
});
