/**
 * Property-based fuzzing of every POST route the server documents and of the WebSocket messages, against the
 * real `kindling serve` in a child process with the RSS watchdog: no 5xx, no hang (each case under 10 s), no
 * crash, RSS under 1.5 GB, every error in its protocol's envelope, every 200 stream ending truthfully. A fixed
 * seed and a bounded number of runs (about a minute); `bench/fuzz.ts` runs the same properties for longer.
 * A failure prints the shrunk counterexample.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { describeFailure, FuzzTarget, fuzzRoutes } from '../support/route-fuzz.ts';

const SEED = 16_016;
const target = new FuzzTarget();
after(() => target.close());

test('fuzzed POST bodies and WebSocket messages: no 5xx, no hang, no crash, bounded RSS, envelopes', async () => {
  const { http, ws } = await fuzzRoutes(target, { seed: SEED, numRuns: 300, timeLimitMs: 60_000 });
  const failures = [describeFailure(http), describeFailure(ws)].filter(Boolean);
  assert.equal(failures.length, 0, failures.join('\n'));
  assert.ok(target.httpCases >= 50, `only ${target.httpCases} HTTP cases ran within the time limit`);
  assert.ok(target.wsCases >= 10, `only ${target.wsCases} WebSocket cases ran within the time limit`);
});
