import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { waitUntil, withDeadline } from '../support/deadline.ts';
import { bearer, keyFile, testKey } from '../support/key-file.ts';
import { KindlingProcess } from '../support/server-process.ts';
import { testModelPath } from '../support/test-model.ts';
import { postJson } from '../support/test-server.ts';

const ROOT = new URL('../..', import.meta.url).pathname;

/** The `msg` of each JSON log line. */
function logMessages(output: string): string[] {
  return output.split('\n').flatMap((line) => {
    try {
      const msg = (JSON.parse(line) as { msg?: unknown }).msg;
      return typeof msg === 'string' ? [msg] : [];
    } catch {
      return [];
    }
  });
}

/** `kindling serve` that is expected to refuse to start: its exit code and its stderr. */
function failedStart(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stderr: string }> {
  return withDeadline(
    new Promise((resolve) => {
      const child = spawn(
        process.execPath,
        ['bin/kindling.js', 'serve', '--model', testModelPath(), '--port', '0', ...args],
        {
          cwd: ROOT,
          stdio: ['ignore', 'ignore', 'pipe'],
          env: { ...process.env, ...env },
        },
      );
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        stderr += chunk;
      });
      child.on('close', (code) => resolve({ code, stderr }));
    }),
    60_000,
    'kindling serve to refuse its key file',
  );
}

test('a malformed key file is one line with its JSON path and exit code 2, from the flag or KINDLING_API_KEYS', async () => {
  const bad = keyFile([
    { name: 'alice', key: testKey('alice') },
    { name: 'bob', key: testKey('bob'), weight: -2 },
  ]);
  const expected = `kindling: --api-keys ${bad.path}: keys[1].weight: must be a positive number (at most 1000)\n`;
  for (const [args, env] of [
    [['--api-keys', bad.path], {}],
    [[], { KINDLING_API_KEYS: bad.path }],
  ] as const) {
    const { code, stderr } = await failedStart([...args], env);
    assert.equal(code, 2);
    assert.equal(stderr, expected);
  }
});

describe('a running server reloads its key file', () => {
  let server: KindlingProcess;
  let output = '';
  const keys = keyFile([{ name: 'alice', key: testKey('alice') }]);
  const generate = (name: string) =>
    postJson(`${server.url}/api/v1/generate`, { prompt: 'Hi', max_length: 1 }, bearer(name));
  before(async () => {
    server = await KindlingProcess.start({ args: ['--api-keys', keys.path, '--log-level', 'info'] });
    server.child.stdout?.on('data', (chunk: string) => {
      output += chunk;
    });
    server.child.stderr?.on('data', (chunk: string) => {
      output += chunk;
    });
  });
  after(async () => server.stop());

  test('on change (a file renamed over it), a broken edit keeps the keys in use, and SIGHUP reloads too', async () => {
    assert.equal((await generate('alice')).status, 200);
    keys.write(JSON.stringify({ keys: [{ name: 'bob', key: testKey('bob'), max_concurrent: 1 }] }));
    await waitUntil(async () => (await generate('bob')).status === 200, 10_000, 'the new key to work');
    assert.equal((await generate('alice')).status, 401, 'the removed key no longer works');

    keys.write(`{"keys": [{"name": "bob", "key": "${testKey('bob')}", "priority": "soon"}]}`);
    await waitUntil(
      () => output.includes('API keys not reloaded (file changed)'),
      10_000,
      'the refused reload to be logged',
    );
    const refusal = logMessages(output).find((m) => m.startsWith('API keys not reloaded (file changed)'));
    assert.equal(
      refusal,
      `API keys not reloaded (file changed), keeping the 1 key(s) in use: --api-keys ${keys.path}: keys[0].priority: must be "interactive" or "batch"`,
    );
    assert.equal((await generate('bob')).status, 200, 'the keys in use stay');

    process.kill(server.pid, 'SIGHUP');
    await waitUntil(() => output.includes('API keys not reloaded (SIGHUP)'), 10_000, 'SIGHUP to reload');
    assert.equal((await generate('bob')).status, 200);

    // Fixed, and SIGHUP'd at once: the signal's reload takes it (the watcher's, 200 ms later, finds no change).
    keys.write(JSON.stringify({ keys: [{ name: 'carol', key: testKey('carol') }] }));
    process.kill(server.pid, 'SIGHUP');
    await waitUntil(() => output.includes('API keys reloaded (SIGHUP): 1 key(s)'), 10_000, 'SIGHUP to reload');
    assert.equal((await generate('carol')).status, 200);
    assert.equal((await generate('bob')).status, 401);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const watcherReloads = logMessages(output).filter((m) => m.startsWith('API keys reloaded (file changed)'));
    assert.equal(watcherReloads.length, 1, "only the first edit was the watcher's; a reload of the same text is none");
    server.assertHealthy();
  });

  test('keys never appear in the logs: not from headers, not from the WebSocket ?apikey=', async () => {
    const socket = new WebSocket(
      `${server.url.replace('http', 'ws')}/api/extra/generate/ws?apikey=${testKey('carol')}`,
    );
    await withDeadline(
      new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject)),
      10_000,
      'the WebSocket to open with ?apikey=',
    );
    socket.close();
    // The request log names the route, never the query; a `?apikey=` anywhere else would show as `[redacted]`.
    await waitUntil(() => output.includes('/api/extra/generate/ws'), 10_000, 'the handshake to be logged');
    for (const name of ['alice', 'bob', 'carol'])
      assert.ok(!output.includes(testKey(name)), `${name}'s key is not in the log`);
    assert.ok(!output.includes('SECRET'));
  });
});
