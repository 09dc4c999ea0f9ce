import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withPartIds } from '../../src/protocols/common/part-event-ids.ts';
import { lastEventId } from '../../src/server/stream-generation.ts';

const event = (data: string) => ({ kind: 'event' as const, data });

test('withPartIds: a one-event part keeps its id; in a group the last event has it and the others count up to it', () => {
  assert.deepEqual(withPartIds([event('a')], 7), [{ kind: 'event', data: 'a', id: '7' }]);
  assert.deepEqual(
    withPartIds([event('finish'), event('usage'), event('[DONE]')], 5).map((e) => e.id),
    ['4.1', '4.2', '5'],
  );
  assert.deepEqual(
    withPartIds([event('message_start'), event('content_block_start'), event('ping')], 1).map((e) => e.id),
    ['0.1', '0.2', '1'],
  );
  assert.deepEqual(withPartIds([], 3), []);
});

test('withPartIds: ids increase strictly as numbers across parts, whatever the group sizes', () => {
  const ids = [
    ...withPartIds([event('role')], 1),
    ...withPartIds([event('text')], 2),
    ...withPartIds([event('a'), event('b')], 3),
    ...withPartIds(
      Array.from({ length: 10 }, (_, i) => event(String(i))),
      4,
    ),
    ...withPartIds([event('c'), event('d'), event('e')], 5),
  ].map((e) => Number(e.id));
  assert.deepEqual(ids, [1, 2, 2.1, 3, 3.1, 3.2, 3.3, 3.4, 3.5, 3.6, 3.7, 3.8, 3.9, 4, 4.1, 4.2, 5]);
  for (let i = 1; i < ids.length; i++)
    assert.ok((ids[i] as number) > (ids[i - 1] as number), `${ids[i]} after ${ids[i - 1]}`);
  assert.throws(
    () =>
      withPartIds(
        Array.from({ length: 11 }, () => event('x')),
        9,
      ),
    RangeError,
  );
});

test('lastEventId: our ids, integer or fractional; anything else is no resume point', () => {
  assert.equal(lastEventId('4'), 4);
  assert.equal(lastEventId('4.2'), 4.2);
  assert.equal(lastEventId('0'), 0);
  assert.equal(lastEventId('0.1'), 0.1);
  assert.equal(lastEventId(['12', '3']), 12);
  assert.equal(lastEventId('99999'), 99999, 'past the end is still an id: the stream decides (submit-or-resume.ts)');
  // Number() reads these as numbers, but this server never sends them: only plain decimals are ids.
  const notDecimal = ['0x10', '1e300', '1e3', '+4', '0b1', '0o7', '.5', '4.', '4.2.1', '١٢'];
  for (const bad of [...notDecimal, '-1', '-0.5', 'NaN', 'abc', '4abc', 'Infinity', '', '  ', undefined]) {
    assert.equal(lastEventId(bad), undefined, JSON.stringify(bad));
  }
});
