import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createClient } from '../../src/client/index.ts';
import type { RunningServer } from '../../src/main.ts';
import { startTestServer } from '../support/test-server.ts';

/**
 * The SDK does not open a connection per request: in Node its default fetch keeps connections alive, so a client
 * that generates, streams and polls again and again talks over the connection it already has.
 */
describe('the SDK reuses its connections (real server, real model)', () => {
  let server: RunningServer;
  const sockets: Socket[] = [];
  before(async () => {
    server = await startTestServer();
    server.app.server.on('connection', (socket: Socket) => sockets.push(socket));
  });
  after(async () => server.close());

  test('ten requests one after another, generate and stream alike, over the connections of the first', async () => {
    const client = createClient('kobold', { baseUrl: server.url, koboldTransport: 'sse' });
    for (let i = 0; i < 5; i++) {
      const result = await client.generate({ prompt: `Story ${i}`, maxTokens: 3, seed: i });
      assert.ok(result.text.length >= 0);
      const stream = client.stream({ prompt: `Story ${i}`, maxTokens: 3, seed: i });
      for await (const _event of stream) {
        // read it all
      }
      await stream.result;
    }
    // The first call may run two requests at once (the generate and its feature probe): two connections, both
    // reused after that.
    assert.ok(sockets.length <= 2, `${sockets.length} connections for 10 requests`);
  });
});
