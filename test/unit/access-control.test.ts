import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mock, test } from 'node:test';
import type { FastifyRequest } from 'fastify';
import { KindlingError } from '../../src/core/kindling-error.ts';
import { AccessControl } from '../../src/server/access/access-control.ts';
import { goDuration } from '../../src/server/access/principal-quota.ts';
import { isAdmin, keyNameOf } from '../../src/server/access/request-identity.ts';
import { waitUntil } from '../support/deadline.ts';

const keyOf = (name: string) => `sk-${name}-${'0'.repeat(20)}`;
const request = () => ({}) as FastifyRequest;

function keyFile(keys: Array<Record<string, unknown>>): string {
  const dir = mkdtempSync(join(tmpdir(), 'kindling-access-'));
  const path = join(dir, 'keys.json');
  writeFileSync(path, JSON.stringify({ keys }));
  return path;
}

test('every presented key is compared with every stored key in constant time, with no early exit', () => {
  const path = keyFile(['a', 'b', 'c', 'd'].map((name) => ({ name, key: keyOf(name) })));
  const access = new AccessControl({ apiKeysPath: path, password: 'the-password' });
  const compare = mock.method(crypto, 'timingSafeEqual');
  try {
    const first = request();
    assert.equal(access.identify(first, [keyOf('a')])?.kind, 'key');
    assert.equal(keyNameOf(first), 'a');
    assert.equal(
      compare.mock.callCount(),
      5,
      'the first key matched, and the other three and the password were still compared',
    );
    compare.mock.resetCalls();
    assert.equal(access.identify(request(), ['wrong', keyOf('nope')]), undefined);
    assert.equal(compare.mock.callCount(), 10);
    for (const call of compare.mock.calls) {
      const [a, b] = call.arguments as [Buffer, Buffer];
      assert.equal(a.length, 32, 'hashes of equal length are compared, never the keys themselves');
      assert.equal(b.length, 32);
    }
    assert.deepEqual(access.identify(request(), ['the-password']), { kind: 'password' });
  } finally {
    compare.mock.restore();
  }
});

test('a key file change is picked up by the watcher; a broken edit keeps the keys in use and says why', async () => {
  const path = keyFile([{ name: 'alice', key: keyOf('alice') }]);
  const access = new AccessControl({ apiKeysPath: path });
  const logs: string[] = [];
  access.log = (level, message) => logs.push(`${level}: ${message}`);
  access.watch();
  try {
    assert.deepEqual(access.keyNames, ['alice']);
    const before = request();
    access.identify(before, [keyOf('alice')]);
    // The way editors save: a new file renamed over the old one.
    writeFileSync(`${path}.tmp`, JSON.stringify({ keys: [{ name: 'bob', key: keyOf('bob') }] }));
    renameSync(`${path}.tmp`, path);
    await waitUntil(() => access.keyNames[0] === 'bob', 5000, 'the new keys to be in use');
    assert.equal(access.identify(request(), [keyOf('alice')]), undefined, 'the old key is gone');
    assert.throws(
      () => access.qosOf(before, 'key:alice'),
      (error: unknown) => error instanceof KindlingError && error.status === 401,
      'a request (a WebSocket) identified before the reload cannot start under a removed key',
    );
    assert.equal(access.identify(request(), [keyOf('bob')])?.kind, 'key');

    writeFileSync(path, `{"keys": [{"name": "bob", "key": "${keyOf('bob')}", "weight": 0}]}`);
    await waitUntil(() => access.lastReload?.ok === false, 5000, 'the broken edit to be refused');
    assert.deepEqual(access.keyNames, ['bob'], 'the keys in use stay');
    assert.equal(access.identify(request(), [keyOf('bob')])?.kind, 'key');
    const line = logs.at(-1) as string;
    assert.match(
      line,
      /^warn: API keys not reloaded \(file changed\), keeping the 1 key\(s\) in use: .*keys\[0\]\.weight: must be a positive number/,
    );
    assert.ok(!logs.join('\n').includes(keyOf('bob')), 'no key in any log line');
    assert.equal(access.reload('SIGHUP'), false);
  } finally {
    access.close();
  }
});

test('a bad key file at start-up is a one-line bad_input error', () => {
  const path = keyFile([{ name: 'alice', key: keyOf('alice'), tokens_per_minute: -5 }]);
  assert.throws(
    () => new AccessControl({ apiKeysPath: path }),
    (error: unknown) =>
      error instanceof KindlingError &&
      error.code === 'bad_input' &&
      error.message === `--api-keys ${path}: keys[0].tokens_per_minute: must be an integer ≥ 1` &&
      !error.message.includes('\n'),
  );
});

test('requests_per_minute: the next request past it gets 429 with the seconds until the oldest one leaves the window', () => {
  let now = 1_000_000;
  const path = keyFile([{ name: 'alice', key: keyOf('alice'), requests_per_minute: 2 }]);
  const access = new AccessControl({ apiKeysPath: path }, () => now);
  const req = request();
  access.identify(req, [keyOf('alice')]);
  const admit = () => {
    const quota = access.qosOf(req, 'key:alice').quota;
    assert.ok(quota);
    quota.check();
    return quota.admit(10, 5);
  };
  admit();
  now += 10_000;
  admit();
  assert.deepEqual(access.rateHeaders(req, 'key:alice'), {
    'x-ratelimit-limit-requests': '2',
    'x-ratelimit-remaining-requests': '0',
    'x-ratelimit-reset-requests': '1m0s',
  });
  now += 5_500;
  assert.throws(admit, (error: unknown) => {
    assert.ok(error instanceof KindlingError);
    assert.equal(error.status, 429);
    assert.equal(error.details.retryAfterSeconds, 45, 'the first request leaves the window 44.5 s from now');
    assert.match(error.message, /key "alice": 2 requests per minute/);
    return true;
  });
  now += 44_500;
  assert.equal(admit(), 5);
});

test('tokens_per_minute: a generation is capped to what is left; settled usage counts for a minute', () => {
  let now = 0;
  const path = keyFile([{ name: 'alice', key: keyOf('alice'), tokens_per_minute: 100 }]);
  const access = new AccessControl({ apiKeysPath: path }, () => now);
  const req = request();
  access.identify(req, [keyOf('alice')]);
  const quota = () => access.qosOf(req, 'key:alice').quota as NonNullable<ReturnType<AccessControl['qosOf']>['quota']>;
  const first = quota();
  assert.equal(first.admit(30, 500), 70, 'prompt 30 + 70 generated fit the 100');
  const second = quota();
  assert.throws(
    () => second.admit(1, 10),
    (e: unknown) => e instanceof KindlingError && e.details.retryAfterSeconds === 5,
  );
  now += 1000;
  first.settle(40);
  assert.equal(access.rateHeaders(req, 'key:alice')['x-ratelimit-remaining-tokens'], '60');
  assert.equal(quota().admit(10, 500), 50);
  assert.throws(
    () => quota().admit(200, 1),
    (e: unknown) => e instanceof KindlingError && /Request too large/.test(e.message),
  );
});

test('--ratelimit limits callers without a key per address; keys without limits get no rate headers', () => {
  const path = keyFile([{ name: 'free', key: keyOf('free') }]);
  const access = new AccessControl({ apiKeysPath: path, ratelimitPerMinute: 1 });
  const anon = request();
  access.identify(anon, []);
  access.qosOf(anon, 'addr:10.0.0.1').quota?.admit(5, 5);
  assert.throws(() => access.qosOf(anon, 'addr:10.0.0.1').quota?.check(), { name: 'KindlingError' });
  access.qosOf(anon, 'addr:10.0.0.2').quota?.check();
  assert.equal(access.rateHeaders(anon, 'addr:10.0.0.1')['x-ratelimit-limit-requests'], '1');
  const keyed = request();
  access.identify(keyed, [keyOf('free')]);
  assert.equal(access.qosOf(keyed, 'key:free').quota, undefined);
  assert.deepEqual(access.rateHeaders(keyed, 'key:free'), {});
});

test('admin: an admin key or the password; never a plain key or a caller without one', () => {
  const path = keyFile([
    { name: 'boss', key: keyOf('boss'), admin: true },
    { name: 'user', key: keyOf('user') },
  ]);
  const access = new AccessControl({ apiKeysPath: path, password: 'the-password' });
  const as = (keys: string[]) => {
    const req = request();
    access.identify(req, keys);
    return isAdmin(req);
  };
  assert.deepEqual(
    [as([keyOf('boss')]), as(['the-password']), as([keyOf('user')]), as([])],
    [true, true, false, false],
  );
});

test('reset durations are written the way OpenAI writes them', () => {
  assert.deepEqual([0, 20, 1000, 17_500, 60_000, 61_250].map(goDuration), [
    '0ms',
    '20ms',
    '1s',
    '17.5s',
    '1m0s',
    '1m1.25s',
  ]);
});
