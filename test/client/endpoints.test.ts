import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Endpoints, isFailoverError, refusedByAll } from '../../src/client/endpoints.ts';
import { ConnectionRefusedError, HttpStatusError, NetworkError, ProtocolError } from '../../src/client/index.ts';

test('Endpoints: round-robin, and a node that failed for two streams at once moves the client once', () => {
  const endpoints = new Endpoints(['http://a', 'http://b', 'http://c']);
  assert.equal(endpoints.current, 'http://a');
  endpoints.failed('http://a');
  assert.equal(endpoints.current, 'http://b');
  // A second stream that was on a reports its failure late: b, which has not failed, stays.
  endpoints.failed('http://a');
  assert.equal(endpoints.current, 'http://b');
  endpoints.failed('http://b');
  endpoints.failed('http://c');
  assert.equal(endpoints.current, 'http://a', 'after the last URL comes the first again');
  const one = new Endpoints(['http://only']);
  one.failed('http://only');
  assert.equal(one.current, 'http://only');
  assert.throws(() => new Endpoints([]), TypeError);
});

test('isFailoverError: connection errors and 503 move on; other answers do not', () => {
  assert.equal(isFailoverError(new NetworkError('reset')), true);
  assert.equal(isFailoverError(new ConnectionRefusedError('http://a')), true);
  assert.equal(isFailoverError(new HttpStatusError({ status: 503, providerType: 'service_unavailable' })), true);
  for (const status of [400, 401, 404, 409, 429, 500, 502]) {
    assert.equal(isFailoverError(new HttpStatusError({ status })), false, String(status));
  }
  assert.equal(isFailoverError(new ProtocolError('bad JSON')), false);
});

test('refusedByAll names every origin once', () => {
  const a = new ConnectionRefusedError('http://a:1');
  assert.equal(refusedByAll([a]), a);
  const all = refusedByAll([a, new ConnectionRefusedError('http://b:2'), new ConnectionRefusedError('http://a:1')]);
  assert.deepEqual(all.origins, ['http://a:1', 'http://b:2']);
  assert.equal(all.origin, 'http://a:1, http://b:2');
  assert.equal(all.message, 'connection refused: nothing is listening at http://a:1, http://b:2');
  assert.ok(all instanceof ConnectionRefusedError);
});
