import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PhraseBanBuffer } from '../../src/stream/phrase-ban-buffer.ts';

const chunk = (token: number, text: string) => ({ tokens: [token], text });

test('a banned phrase spread over tokens is caught; the tokens from where it began are handed back', () => {
  const buffer = new PhraseBanBuffer(['the']);
  assert.deepEqual(
    buffer.push(chunk(1, 'Once ')).release.map((c) => c.text),
    ['Once '],
  );
  assert.deepEqual(buffer.push(chunk(2, 'upon T')).release, []);
  const result = buffer.push(chunk(3, 'He end'));
  assert.deepEqual(result.hit, {
    phrase: 'the',
    rewind: [2, 3],
    ban: 2,
    removed: [chunk(2, 'upon T'), chunk(3, 'He end')],
  });
  assert.deepEqual(result.release, []);
  assert.deepEqual(buffer.flush(), []);
});

test('held text that cannot become a phrase is released in order', () => {
  const buffer = new PhraseBanBuffer(['slop phrase']);
  assert.deepEqual(
    buffer.push(chunk(1, 'a slo')).release.map((c) => c.text),
    [],
  );
  assert.deepEqual(
    buffer.push(chunk(2, 'w day')).release.map((c) => c.text),
    ['a slo', 'w day'],
  );
  assert.deepEqual(
    buffer.push(chunk(3, ' slop ')).release.map((c) => c.text),
    [],
  );
  assert.deepEqual(
    buffer.flush().map((c) => c.text),
    [' slop '],
  );
});

test('no phrases: everything passes straight through', () => {
  const buffer = new PhraseBanBuffer(['', '']);
  assert.equal(buffer.active, false);
  assert.deepEqual(
    buffer.push(chunk(1, 'the')).release.map((c) => c.text),
    ['the'],
  );
});
