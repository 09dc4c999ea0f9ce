import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createClient } from '../../src/client/index.ts';
import { freePort } from '../support/free-port.ts';
import { runCli as runAnyCli, SDK_CLI } from '../support/run-cli.ts';
import { startTestServer } from '../support/test-server.ts';

const runCli = (args: string[]) => runAnyCli(SDK_CLI, args, { deadlineMs: 60_000 });

// The reference text comes from a second server on a cold cache, as the CLI's server was: a repeat of the
// prompt on the same server would reuse its cache, whose logits may differ from a cold run in the last bits.
test('kindling generate with two URLs, the first dead: streams from the second, comma-separated or repeated', async (t) => {
  const [live, reference] = await Promise.all([startTestServer(), startTestServer()]);
  t.after(() => Promise.all([live.close(), reference.close()]));
  const dead = `http://127.0.0.1:${await freePort()}`;
  const args = ['--max-tokens', '24', '--seed', '3', '--temperature', '0.7'];
  const expected = await createClient('kobold', { baseUrl: reference.url }).generate({
    prompt: 'Once upon a time',
    maxTokens: 24,
    seed: 3,
    temperature: 0.7,
  });
  assert.ok(expected.text.length > 0);

  const comma = await runCli(['generate', 'Once upon a time', '--url', `${dead},${live.url}`, '--verbose', ...args]);
  assert.equal(comma.code, 0, comma.stderr);
  assert.equal(comma.stdout, expected.text.endsWith('\n') ? expected.text : `${expected.text}\n`);
  assert.ok(comma.stderr.includes(`[reconnecting: connection refused: nothing is listening at ${dead}]`), comma.stderr);

  // Repeated --url, sync generate: the other prompt keeps the first run's cache out of it.
  const expectedSync = await createClient('kobold', { baseUrl: reference.url }).generate({
    prompt: 'The sea',
    maxTokens: 24,
    seed: 3,
    temperature: 0.7,
  });
  const repeated = await runCli(['generate', 'The sea', '--url', dead, '--url', live.url, '--no-stream', ...args]);
  assert.equal(repeated.code, 0, repeated.stderr);
  assert.equal(repeated.stdout, expectedSync.text.endsWith('\n') ? expectedSync.text : `${expectedSync.text}\n`);
});

test('kindling generate with every URL dead: one clear line naming them all, exit 1', async () => {
  const dead = [`http://127.0.0.1:${await freePort()}`, `http://127.0.0.1:${await freePort()}`];
  const run = await runCli(['generate', 'x', '--url', dead.join(',')]);
  assert.equal(run.code, 1);
  assert.equal(run.stdout, '');
  assert.equal(
    run.stderr,
    `kindling: no Kindling server at ${dead.join(', ')} — start one with \`npx kindling serve\` (or pass --url)\n`,
  );
});
