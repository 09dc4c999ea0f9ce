import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KindlingError } from '../../src/core/kindling-error.ts';
import { DEFAULT_SAMPLING } from '../../src/core/sampling-params.ts';
import { FakeEngine } from '../../src/engine/fake/fake-engine.ts';
import type { Generation } from '../../src/scheduler/generation.ts';
import { requestFingerprint } from '../../src/scheduler/request-fingerprint.ts';
import { Scheduler } from '../../src/scheduler/scheduler.ts';
import { LookupRateLimiter } from '../../src/server/lookup-rate-limit.ts';
import { generationRequest } from '../support/generation-request.ts';

const request = generationRequest;
const alice = { principal: 'addr:10.0.0.1', protocol: 'kobold' };
const bob = { principal: 'addr:10.0.0.2', protocol: 'kobold' };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const finished = async (generation: Generation) => {
  while (!generation.log.ended) await generation.log.waitForPartAfter(generation.log.lastId);
};
const scheduler = (resumeWindowMs = 10_000, tokenDelayMs = 5) =>
  new Scheduler(new FakeEngine({ slots: 2, tokenDelayMs }), {
    maxQueue: 4,
    graceMs: 60_000,
    maxGenerationMs: 0,
    maxQueueWaitMs: 0,
    resumeWindowMs,
  });

test('a key is found only by its principal; the server id by anyone; the same key twice does not collide', async () => {
  const s = scheduler();
  const a = await s.submit(request('a', { key: 'KCPP1', maxTokens: 1000 }), alice);
  const b = await s.submit(request('b', { key: 'KCPP1', maxTokens: 2 }), bob);
  assert.equal(s.find(alice.principal, 'KCPP1'), a);
  assert.equal(s.find(bob.principal, 'KCPP1'), b);
  assert.equal(s.find('addr:10.0.0.3', 'KCPP1'), undefined);
  assert.match(a.id, /^kg-[A-Za-z0-9_-]{22}$/);
  assert.notEqual(a.id, b.id);
  assert.equal(s.find('addr:10.0.0.3', a.id), a, 'the server id reaches it from anywhere');
  assert.equal(s.abort(bob.principal, 'KCPP1'), true, "Bob's own");
  assert.equal(a.status, 'running', "Alice's untouched");
  await assert.rejects(
    s.submit(request('c', { key: 'KCPP1' }), { ...alice, protocol: 'openai-chat' }),
    (error: KindlingError) => error.code === 'conflict' && /KoboldAI generation/.test(error.message),
  );
  assert.equal(s.abort(alice.principal, a.id), true);
  await finished(a);
});

test('the key-less view and key-less abort are per principal', async () => {
  const s = scheduler();
  const a = await s.submit(request('a', { maxTokens: 1000 }), alice);
  assert.equal(s.lastOf(alice.principal), a);
  assert.equal(s.lastOf(bob.principal), undefined);
  assert.equal(s.abort(bob.principal, undefined), false);
  assert.equal(a.status, 'running');
  assert.equal(s.abort(alice.principal, undefined), true);
  await finished(a);
});

test('readers: an anonymous generation stops when its last reader leaves; a keyed one after the window', async () => {
  const s = scheduler(100);
  const anonymous = await s.submit(request('a', { maxTokens: 10_000 }), alice);
  const first = anonymous.attachReader();
  const second = anonymous.attachReader();
  first();
  await sleep(20);
  assert.equal(anonymous.status, 'running', 'one reader is still there');
  second();
  await finished(anonymous);
  assert.equal(anonymous.abortCause, 'disconnect');

  const keyed = await s.submit(request('k', { key: 'K', maxTokens: 10_000 }), alice);
  keyed.attachReader()();
  await sleep(60);
  keyed.touch();
  await sleep(60);
  assert.equal(keyed.status, 'running', 'a poll restarted the window');
  const back = keyed.attachReader();
  await sleep(150);
  assert.equal(keyed.status, 'running', 'a reader holds it');
  back();
  const left = Date.now();
  await finished(keyed);
  assert.ok(Date.now() - left >= 90, 'one window after the reader left');
  assert.equal(keyed.abortCause, 'disconnect');
});

test('--resume-window 0 aborts a keyed generation as soon as its last reader leaves', async () => {
  const s = scheduler(0);
  const keyed = await s.submit(request('k', { key: 'K0', maxTokens: 10_000 }), alice);
  keyed.attachReader()();
  await finished(keyed);
  assert.equal(keyed.abortCause, 'disconnect');
});

test('the fingerprint is the decoded request without key and disconnect policy', () => {
  const base = request('p', { key: 'A', sampling: { ...DEFAULT_SAMPLING, logitBias: new Map([[5, -Infinity]]) } });
  assert.equal(requestFingerprint(base), requestFingerprint({ ...base, key: 'B', abortOnDisconnect: true }));
  assert.notEqual(requestFingerprint(base), requestFingerprint({ ...base, maxTokens: 6 }));
  assert.notEqual(requestFingerprint(base), requestFingerprint({ ...base, memory: 'm' }));
  assert.notEqual(
    requestFingerprint(base),
    requestFingerprint({ ...base, sampling: { ...base.sampling, logitBias: new Map([[5, -100]]) } }),
  );
  assert.notEqual(requestFingerprint(base), requestFingerprint({ ...base, sampling: { ...base.sampling, seed: 3 } }));
});

test('the lookup limiter: a burst, then a steady rate, per principal, with Retry-After', () => {
  let now = 0;
  const limiter = new LookupRateLimiter(20, 3, () => now);
  for (let i = 0; i < 20; i++) limiter.miss('p');
  assert.throws(
    () => limiter.miss('p'),
    (error: KindlingError) =>
      error.status === 429 && error.code === 'rate_limited' && error.details.retryAfterSeconds === 1,
  );
  limiter.miss('q');
  now += 1000;
  for (let i = 0; i < 3; i++) limiter.miss('p');
  assert.throws(() => limiter.miss('p'), KindlingError);
  let answered = 0;
  for (let second = 0; second < 60; second++) {
    now += 1000;
    for (let i = 0; i < 50; i++) {
      try {
        limiter.miss('p');
        answered++;
      } catch {}
    }
  }
  assert.equal(answered, 180, 'three a second, however fast the guesses come');
});
