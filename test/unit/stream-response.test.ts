import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { test } from 'node:test';
import { formatWireMessage } from '../../src/server/sse/format-wire-message.ts';
import { StreamResponse } from '../../src/server/sse/stream-response.ts';

/** A response whose socket never drains: what a reader that stopped reading looks like to the server. */
class StuckResponse extends EventEmitter {
  written: string[] = [];
  destroyed = false;
  writableEnded = false;
  writeHead() {}
  flushHeaders() {}
  write(chunk: string) {
    this.written.push(chunk);
    return false;
  }
  destroy() {
    this.destroyed = true;
    this.emit('close');
  }
  end() {
    this.writableEnded = true;
  }
}

/** A response whose socket takes every write at once (a reader that keeps up), recording what was written. */
function drainingResponse(): StuckResponse {
  const res = new StuckResponse();
  res.write = (chunk: string) => {
    res.written.push(chunk);
    return true;
  };
  return res;
}

test('a reader that stays blocked past the limit is cut (and the writer is released)', async () => {
  const res = new StuckResponse();
  const response = new StreamResponse(res as unknown as ServerResponse, {
    contentType: 'text/event-stream',
    heartbeatMs: 0,
    stalledReaderMs: 50,
  });
  const started = Date.now();
  await response.send([{ kind: 'event', id: '1', event: 'message', data: '{}' }]);
  assert.ok(res.destroyed);
  assert.ok(Date.now() - started >= 45);
  assert.ok(response.closed.aborted);
});

test('silence is filled with heartbeat comments that carry the queue position', async () => {
  const res = drainingResponse();
  const response = new StreamResponse(res as unknown as ServerResponse, {
    contentType: 'text/event-stream',
    heartbeatMs: 20,
    stalledReaderMs: 1000,
  });
  response.setHeartbeatText('ping queued 3');
  await new Promise((resolve) => setTimeout(resolve, 70));
  response.end();
  assert.ok(res.written.length >= 2);
  assert.ok(res.written.every((w) => w === ': ping queued 3\n\n'));
});

test('a heartbeat comes only after a full interval of silence: events keep postponing it', async () => {
  const res = drainingResponse();
  const response = new StreamResponse(res as unknown as ServerResponse, {
    contentType: 'text/event-stream',
    heartbeatMs: 150,
    stalledReaderMs: 1000,
  });
  // An event every ~10 ms for over 300 ms: two heartbeat intervals, never 150 ms of silence.
  for (let i = 0; i < 30; i++) {
    await response.send([{ kind: 'event', id: String(i + 1), event: 'message', data: '{}' }]);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(res.written.filter((w) => w.startsWith(':')).length, 0);
  await new Promise((resolve) => setTimeout(resolve, 400));
  response.end();
  assert.ok(res.written.filter((w) => w.startsWith(':')).length >= 1);
});

test('SSE framing: id, event, then one data line per line of data, blank line; comments are single-line', () => {
  assert.equal(
    formatWireMessage({ kind: 'event', id: '7', event: 'message', data: '{"a": 1}' }),
    'id: 7\nevent: message\ndata: {"a": 1}\n\n',
  );
  assert.equal(formatWireMessage({ kind: 'event', data: 'a\nb' }), 'data: a\ndata: b\n\n');
  assert.equal(formatWireMessage({ kind: 'comment', text: 'x\ny' }), ': x y\n\n');
  assert.equal(formatWireMessage({ kind: 'line', json: '{"done":true}' }), '{"done":true}\n');
});
