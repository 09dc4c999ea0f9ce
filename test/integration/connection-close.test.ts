import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../../src/main.ts';
import { startTestServer } from '../support/test-server.ts';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  reusedSocket: boolean;
}

/**
 * SillyTavern's HTTP client sends `Connection: close` on every request. A stream that answered `keep-alive`
 * anyway made Node's connection pool send the next request (the next generation, a swipe, an abort) on that
 * socket, which the server's parser had closed: a 400 for the first call after every stream.
 */
describe('Connection: close is honoured', () => {
  let server: RunningServer;
  let port: number;
  before(async () => {
    server = await startTestServer();
    port = Number(new URL(server.url).port);
  });
  after(async () => server.close());

  const post = (agent: http.Agent, path: string, body: unknown, headers: Record<string, string> = {}) =>
    new Promise<Answer>((resolve, reject) => {
      const text = JSON.stringify(body);
      const request = http.request(
        {
          host: '127.0.0.1',
          port,
          path,
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers },
          timeout: 10_000,
        },
        (response) => {
          let out = '';
          response.setEncoding('utf8');
          response.on('data', (chunk) => {
            out += chunk;
          });
          response.on('end', () =>
            resolve({
              status: response.statusCode ?? 0,
              headers: response.headers,
              body: out,
              reusedSocket: request.reusedSocket,
            }),
          );
        },
      );
      request.on('timeout', () => request.destroy(new Error(`${path}: no answer within 10 s`)));
      request.on('error', reject);
      request.end(text);
    });

  const stream = { prompt: 'Once upon a time', max_length: 6 };
  const agents: Array<[string, () => http.Agent]> = [
    ['the default agent', () => http.globalAgent],
    ['a keep-alive agent with one socket', () => new http.Agent({ keepAlive: true, maxSockets: 1 })],
  ];

  for (const [name, makeAgent] of agents) {
    test(`${name}: a stream with Connection: close, then the next calls SillyTavern makes, all answered`, async () => {
      const agent = makeAgent();
      const first = await post(agent, '/api/extra/generate/stream', stream, { connection: 'close' });
      assert.equal(first.status, 200);
      assert.equal(first.headers.connection, 'close', 'the stream says it closes, as asked');
      assert.match(first.body, /"finish_reason": "(length|stop)"/, 'the whole stream arrived');
      const next = await post(agent, '/api/extra/generate/stream', stream, { connection: 'close' });
      assert.equal(next.status, 200, next.body);
      assert.equal(next.reusedSocket, false, 'a closed connection is not reused');
      const abort = await post(agent, '/api/extra/abort', { genkey: 'KCPP1111' }, { connection: 'close' });
      assert.equal(abort.status, 200, abort.body);
      const sync = await post(agent, '/api/v1/generate', { prompt: 'Once', max_length: 2 }, { connection: 'close' });
      assert.equal(sync.status, 200, sync.body);
      assert.equal(sync.headers.connection, 'close');
      const plain = await post(agent, '/api/v1/generate', { prompt: 'Once', max_length: 2 });
      assert.equal(plain.status, 200, plain.body);
      agent !== http.globalAgent && agent.destroy();
    });
  }

  test('without Connection: close a stream keeps the connection, and the next request reuses it', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const first = await post(agent, '/api/extra/generate/stream', stream);
    assert.equal(first.status, 200);
    assert.equal(first.headers.connection, 'keep-alive');
    const second = await post(agent, '/v1/completions', { prompt: 'Once', max_tokens: 2, stream: true });
    assert.equal(second.status, 200, second.body);
    assert.equal(second.reusedSocket, true);
    assert.match(second.body, /data: \[DONE\]/);
    agent.destroy();
  });

  /** Everything a raw connection receives until the server closes it (or 5 s pass). */
  const rawExchange = (first: string, then?: (received: string) => string | undefined) =>
    new Promise<{ received: string; closedByServer: boolean }>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      let received = '';
      let sentSecond = false;
      const timer = setTimeout(() => {
        socket.destroy();
        resolve({ received, closedByServer: false });
      }, 5000);
      socket.on('data', (chunk) => {
        received += chunk.toString('utf8');
        const second = !sentSecond && then?.(received);
        if (second) {
          sentSecond = true;
          socket.write(second);
        }
      });
      socket.on('error', () => {});
      socket.on('close', () => {
        clearTimeout(timer);
        resolve({ received, closedByServer: true });
      });
      socket.write(first);
    });
  const rawPost = (path: string, body: unknown, extra = '', version = '1.1') => {
    const text = JSON.stringify(body);
    return `POST ${path} HTTP/${version}\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n${extra}\r\n${text}`;
  };

  test('raw socket: two requests in one write, the first with Connection: close: one answer, then the close', async () => {
    const { received, closedByServer } = await rawExchange(
      rawPost('/api/extra/generate/stream', stream, 'Connection: close\r\n') +
        rawPost('/api/v1/generate', { prompt: 'x', max_length: 1 }),
    );
    assert.ok(closedByServer, 'the server closed the connection');
    assert.match(received, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(received, /\r\nConnection: close\r\n/i);
    assert.match(received, /"finish_reason": "(length|stop)"/);
    assert.ok(received.endsWith('0\r\n\r\n'), 'the stream ended cleanly');
    assert.equal(received.match(/HTTP\/1\.1 /g)?.length, 1, 'the second request is not answered');
    assert.doesNotMatch(received, / 400 /);
  });

  test('raw socket: the second request sent after the first stream ended is never answered with 400', async () => {
    const { received, closedByServer } = await rawExchange(
      rawPost('/api/extra/generate/stream', stream, 'Connection: close\r\n'),
      (sofar) => (sofar.endsWith('0\r\n\r\n') ? rawPost('/api/extra/abort', { genkey: 'KCPP2222' }) : undefined),
    );
    assert.ok(closedByServer);
    assert.match(received, /^HTTP\/1\.1 200 OK\r\n/);
    assert.doesNotMatch(received, / 400 /);
    assert.equal(received.match(/HTTP\/1\.1 /g)?.length, 1);
  });

  test('HTTP/1.0: the stream is delimited by the connection’s end, as before', async () => {
    const { received, closedByServer } = await rawExchange(rawPost('/api/extra/generate/stream', stream, '', '1.0'));
    assert.ok(closedByServer);
    assert.match(received, /^HTTP\/1\.1 200 OK\r\n/);
    assert.doesNotMatch(received, /transfer-encoding: chunked/i);
    assert.doesNotMatch(received, /connection: keep-alive/i);
    assert.match(received, /\r\n\r\nid: \d+\nevent: message\ndata: /);
    assert.match(received, /"finish_reason": "(length|stop)"\}\n\n$/);
  });
});
