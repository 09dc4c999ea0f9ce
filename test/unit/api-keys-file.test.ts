import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { API_KEY_DEFAULTS, parseApiKeys, readApiKeysFile } from '../../src/config/api-keys-file.ts';
import { KindlingError } from '../../src/core/kindling-error.ts';

const KEY = 'sk-alice-0123456789abcdef';
const file = (keys: unknown[]) => JSON.stringify({ keys });

test('every field but name and key is optional, with the documented defaults', () => {
  const [alice, bob] = parseApiKeys(
    file([
      { name: 'alice', key: KEY },
      {
        name: 'bob',
        key: 'sk-bob-0123456789abcdef',
        priority: 'batch',
        weight: 0.5,
        max_concurrent: 2,
        max_queued: 0,
        requests_per_minute: 60,
        tokens_per_minute: 20000,
        admin: true,
      },
    ]),
  );
  assert.deepEqual(alice, { name: 'alice', key: KEY, ...API_KEY_DEFAULTS });
  assert.equal(API_KEY_DEFAULTS.priority, 'interactive');
  assert.equal(API_KEY_DEFAULTS.weight, 1);
  assert.equal(API_KEY_DEFAULTS.requestsPerMinute, Number.POSITIVE_INFINITY);
  assert.deepEqual(bob, {
    name: 'bob',
    key: 'sk-bob-0123456789abcdef',
    priority: 'batch',
    weight: 0.5,
    maxConcurrent: 2,
    maxQueued: 0,
    requestsPerMinute: 60,
    tokensPerMinute: 20000,
    admin: true,
  });
});

test('each problem is one message with its JSON path, and none quotes a key', () => {
  const ok = { name: 'a', key: KEY };
  const cases: Array<[string, string]> = [
    ['[]', '$: must be an object {"keys": [...]}'],
    ['{"key": []}', 'key: unknown field (the file has only "keys")'],
    ['{"keys": {}}', 'keys: must be an array'],
    [file([ok, ok, { ...ok, name: 'c', weight: -1 }]), 'keys[1].name: "a" is already keys[0]\'s name'],
    [file([ok, { name: 'b', key: KEY, weight: 0 }]), 'keys[1].weight: must be a positive number (at most 1000)'],
    [file([ok, { name: 'b', key: KEY }]), 'keys[1].key: the same key as keys[0]'],
    [file([{ name: 'b' }]), 'keys[0].key: is required'],
    [file([{ ...ok, priority: 'urgent' }]), 'keys[0].priority: must be "interactive" or "batch"'],
    [file([{ ...ok, max_concurrent: 0 }]), 'keys[0].max_concurrent: must be an integer ≥ 1'],
    [file([{ ...ok, max_queued: 1.5 }]), 'keys[0].max_queued: must be an integer ≥ 0'],
    [file([{ ...ok, requests_per_min: 5 }]), 'keys[0].requests_per_min: unknown field'],
    [file([{ ...ok, key: 'short' }]), 'keys[0].key: must be at least 16 characters'],
    [file([{ ...ok, key: `${KEY} x` }]), 'keys[0].key: must not contain spaces or control characters'],
    [
      file([{ ...ok, name: 'has space' }]),
      'keys[0].name: must be 1 to 64 letters, digits, "_", ".", "@" or "-", starting with a letter or digit',
    ],
    [file([{ ...ok, admin: 'yes' }]), 'keys[0].admin: must be true or false'],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseApiKeys(text), { message }, text);
  }
  assert.deepEqual(parseApiKeys('{"keys": []}'), []);
});

test('a syntax error names its line and column, never the text around it (which may hold a key)', () => {
  const text = `{"keys": [\n  {"name": "a", "key": "${KEY}" "weight": 1}\n]}`;
  assert.throws(
    () => parseApiKeys(text),
    (error: Error) => /^not valid JSON( \(line 2, column \d+\))?$/.test(error.message) && !error.message.includes(KEY),
  );
});

test('readApiKeysFile: one bad_input line naming the flag, the file and the path', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kindling-keys-'));
  const path = join(dir, 'keys.json');
  writeFileSync(
    path,
    file([
      { name: 'a', key: KEY },
      { name: 'b', key: 'sk-b-0123456789abcdef', weight: 'x' },
    ]),
  );
  assert.throws(
    () => readApiKeysFile(path).keys,
    (error: unknown) =>
      error instanceof KindlingError &&
      error.code === 'bad_input' &&
      error.message === `--api-keys ${path}: keys[1].weight: must be a positive number (at most 1000)`,
  );
  assert.throws(() => readApiKeysFile(join(dir, 'missing.json')), {
    message: `--api-keys ${join(dir, 'missing.json')}: cannot read the file (ENOENT)`,
  });
});
