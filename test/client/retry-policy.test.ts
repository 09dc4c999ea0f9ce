import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  backoffDelay,
  MAX_RETRY_AFTER_MS,
  parseRetryAfter,
  resolveRetryPolicy,
  sleep,
} from '../../src/client/retry-policy.ts';

test('backoff doubles per failure, is capped, and jitter only takes off up to 25 %', () => {
  const policy = resolveRetryPolicy({ baseDelayMs: 100, maxDelayMs: 1000 });
  assert.deepEqual(
    [1, 2, 3, 4, 5, 9].map((n) => backoffDelay(n, policy, undefined, () => 0)),
    [100, 200, 400, 800, 1000, 1000],
  );
  assert.deepEqual(
    [1, 2, 5].map((n) => backoffDelay(n, policy, undefined, () => 0.999)),
    [75, 150, 750],
  );
});

test('a server hint replaces the computed delay, within the retry-after ceiling', () => {
  const policy = resolveRetryPolicy({ baseDelayMs: 100, maxDelayMs: 1000 });
  assert.equal(backoffDelay(1, policy, 2500), 2500);
  assert.equal(backoffDelay(1, policy, 0), 0);
  assert.equal(backoffDelay(1, policy, 10 * 60_000), MAX_RETRY_AFTER_MS);
});

test('retry-after is read from retry-after-ms, seconds and HTTP dates', () => {
  assert.equal(parseRetryAfter(new Headers({ 'retry-after-ms': '250' })), 250);
  assert.equal(parseRetryAfter(new Headers({ 'retry-after': '3' })), 3000);
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(parseRetryAfter(new Headers({ 'retry-after': 'Thu, 01 Jan 2026 00:00:05 GMT' }), now), 5000);
  assert.equal(parseRetryAfter(new Headers({ 'retry-after': 'soon' })), undefined);
  assert.equal(parseRetryAfter(new Headers()), undefined);
});

test('sleep rejects with the abort reason as soon as the signal aborts', async () => {
  const controller = new AbortController();
  const started = Date.now();
  setTimeout(() => controller.abort(new Error('stop')), 20);
  await assert.rejects(sleep(5000, controller.signal), /stop/);
  assert.ok(Date.now() - started < 1000);
});
