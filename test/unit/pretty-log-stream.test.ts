import assert from 'node:assert/strict';
import { test } from 'node:test';
import { prettyLine, prettyLogStream } from '../../src/server/observability/pretty-log-stream.ts';
import { requestIdOf } from '../../src/server/observability/request-id.ts';

test('--log-format pretty: time, level, request id, message, then the fields as key=value', () => {
  const time = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
  const line = prettyLine({
    level: 30,
    time,
    pid: 1,
    hostname: 'h',
    reqId: 'r-1',
    msg: 'request',
    route: '/api/v1/generate',
    status: 200,
    stop_reason: 'max-tokens',
    path: 'a b',
    error_code: undefined,
  });
  assert.equal(
    line,
    '03:04:05.678 INFO  [r-1] request route=/api/v1/generate status=200 stop_reason=max-tokens path="a b"\n',
  );
});

test('an error line shows its stack indented below it; a line that is not JSON passes as it is', () => {
  const written: string[] = [];
  const stream = prettyLogStream({ write: (line: string) => written.push(line) });
  stream.write(
    `${JSON.stringify({ level: 50, time: 0, msg: 'failed', err: { type: 'Error', message: 'x', stack: 'Error: x\n    at f' } })}\n`,
  );
  stream.write('plain text\n');
  assert.equal(written[0], '00:00:00.000 ERROR failed\n    Error: x\n        at f\n');
  assert.equal(written[1], 'plain text\n');
});

test('X-Request-Id: a plain token is kept, anything else replaced by a UUID', () => {
  const idOf = (value?: string) =>
    requestIdOf({ headers: value === undefined ? {} : { 'x-request-id': value } } as Parameters<typeof requestIdOf>[0]);
  assert.equal(idOf('trace-01:ab.c_d'), 'trace-01:ab.c_d');
  for (const bad of [undefined, '', 'a b', 'x'.repeat(129), '-leading', 'quote"', 'new\nline'])
    assert.match(idOf(bad), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, String(bad));
});
