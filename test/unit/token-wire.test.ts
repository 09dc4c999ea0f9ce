import assert from 'node:assert/strict';
import { createServer, request, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { connect } from 'node:net';
import { test } from 'node:test';
import { encodeKoboldStream } from '../../src/protocols/kobold/encode-stream.ts';
import { pythonJson, pythonJsonString } from '../../src/protocols/kobold/python-json.ts';
import { StreamResponse } from '../../src/server/sse/stream-response.ts';
import { withDeadline } from '../support/deadline.ts';

/** Python's json.dumps(s) for the strings below, written out by hand. */
const DUMPS: Array<[string, string]> = [
  ['plain', '"plain"'],
  [' "quoted" \\ back', '" \\"quoted\\" \\\\ back"'],
  ['tab\tnew\nline', '"tab\\tnew\\nline"'],
  ['caf\u00e9', '"caf\\u00e9"'],
  ['\u007f del', '"\\u007f del"'],
  ['emoji \u{1f600}', '"emoji \\ud83d\\ude00"'],
  ['', '""'],
];

test('pythonJsonString writes what json.dumps writes, ASCII or not', () => {
  for (const [text, dumped] of DUMPS) {
    assert.equal(pythonJsonString(text), dumped, text);
    assert.equal(pythonJson(text), dumped, text);
  }
});

test("the Kobold token event's data is the same bytes as the generic Python-style serializer gives", () => {
  for (const [text] of DUMPS.filter(([t]) => t !== '')) {
    const [event] = encodeKoboldStream([{ id: 3, part: { type: 'text-delta', text, tokens: [1] } }]);
    assert.ok(event && event.kind === 'event');
    assert.equal(event.data, pythonJson({ token: text, finish_reason: null }));
    assert.equal(event.id, '3');
  }
});

/** A real server whose handler streams `pieces` through StreamResponse, each after the previous is written. */
async function serveStream(pieces: string[]): Promise<{ port: number; close: () => Promise<void> }> {
  const server = createServer((_req, res: ServerResponse) => {
    const response = new StreamResponse(res, {
      contentType: 'text/event-stream',
      heartbeatMs: 0,
      stalledReaderMs: 5000,
    });
    void (async () => {
      for (const text of pieces) await response.send([{ kind: 'event', event: 'message', data: text }]);
      response.end();
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const PIECES = ['{"token": "a"}', '{"token": "caf\u00e9 \u{1f600}"}', '{"token": "z"}'];
const EXPECTED = PIECES.map((p) => `event: message\ndata: ${p}\n\n`).join('');

test('an HTTP/1.1 stream written straight to the socket arrives as valid chunks, keeps the connection, and ends', async () => {
  const { port, close } = await serveStream(PIECES);
  try {
    const read = () =>
      withDeadline(
        new Promise<{ body: string; headers: Record<string, unknown>; reused: boolean }>((resolve, reject) => {
          const req = request({ port, host: '127.0.0.1', path: '/', agent }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (c) => {
              body += c;
            });
            res.on('end', () => resolve({ body, headers: res.headers, reused: req.reusedSocket }));
          });
          req.on('error', reject);
          req.end();
        }),
        10_000,
        'the chunked stream to end',
      );
    const { Agent } = await import('node:http');
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const first = await read();
    assert.equal(first.body, EXPECTED);
    assert.equal(first.headers['transfer-encoding'], 'chunked');
    const second = await read();
    assert.equal(second.body, EXPECTED, 'a second response on the same connection parses too');
    assert.equal(second.reused, true);
    agent.destroy();
  } finally {
    await close();
  }
});

test('an HTTP/1.0 client gets the stream unchunked, ended by the connection closing', async () => {
  const { port, close } = await serveStream(PIECES);
  try {
    const raw = await withDeadline(
      new Promise<string>((resolve, reject) => {
        const socket: Socket = connect(port, '127.0.0.1', () => socket.write('GET / HTTP/1.0\r\nHost: x\r\n\r\n'));
        let data = '';
        socket.setEncoding('utf8');
        socket.on('data', (c) => {
          data += c;
        });
        socket.on('end', () => resolve(data));
        socket.on('error', reject);
      }),
      10_000,
      'the HTTP/1.0 stream to end with the connection',
    );
    const [head, body] = raw.split('\r\n\r\n', 2) as [string, string];
    assert.doesNotMatch(head, /transfer-encoding/i);
    assert.equal(raw.slice(head.length + 4), EXPECTED);
    assert.ok(body.length > 0);
  } finally {
    await close();
  }
});
