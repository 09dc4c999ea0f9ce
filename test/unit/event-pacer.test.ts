import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ADAPTIVE_MAX_MS, ADAPTIVE_START_MS, EventPacer } from '../../src/server/sse/event-pacer.ts';

test('a reader that keeps up is never paced: one event per batch', () => {
  const pacer = new EventPacer();
  for (let t = 0; t < 100; t += 5) {
    pacer.sent(0, false, t);
    assert.equal(pacer.delay(t), 0);
  }
});

test('a reader that falls behind is paced from the start value, doubling to the cap, and recovers by halves', () => {
  const pacer = new EventPacer();
  pacer.sent(4096, false, 0);
  assert.equal(pacer.paceMs, ADAPTIVE_START_MS);
  assert.equal(pacer.delay(5), ADAPTIVE_START_MS - 5);
  const paces: number[] = [];
  for (let i = 0; i < 10; i++) {
    pacer.sent(0, true, 100 * i);
    paces.push(pacer.paceMs);
  }
  assert.deepEqual(paces.slice(0, 4), [ADAPTIVE_START_MS * 2, ADAPTIVE_START_MS * 4, ADAPTIVE_START_MS * 8, 250]);
  assert.equal(pacer.paceMs, ADAPTIVE_MAX_MS);
  const back: number[] = [];
  while (pacer.paceMs > 0) {
    pacer.sent(0, false, 2000);
    back.push(pacer.paceMs);
  }
  assert.deepEqual(back, [125, 62.5, 31.25, 0]);
  assert.equal(pacer.delay(2001), 0, 'caught up: one event per token again');
});

test("a client's pace holds whatever the reader does, and the slower of the two applies", () => {
  const pacer = new EventPacer(100);
  pacer.sent(0, false, 0);
  assert.equal(pacer.delay(30), 70);
  assert.equal(pacer.delay(150), 0);
  for (let i = 0; i < 6; i++) pacer.sent(1, false, 1000);
  assert.equal(pacer.paceMs, ADAPTIVE_MAX_MS);
});
