import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { test } from 'node:test';
import { freePort } from '../support/free-port.ts';
import { FULL_CLI as FULL_ENTRY, runCli, SDK_CLI as SDK_ENTRY } from '../support/run-cli.ts';

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    });
  });
}

test('generate with no server says so at once and how to start one', async () => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const run = await runCli(SDK_ENTRY, ['generate', 'Once', '--url', url]);
  assert.equal(run.code, 1, run.stderr);
  assert.equal(
    run.stderr,
    `kindling: no Kindling server at ${url} — start one with \`npx kindling serve\` (or pass --url)\n`,
  );
  assert.equal(run.stdout, '');
  // Four backoff retries took 9 s; without them the process needs only its own start-up.
  assert.ok(run.ms < 8000, `took ${run.ms} ms`);

  const sync = await runCli(SDK_ENTRY, ['generate', 'Once', '--url', url, '--no-stream']);
  assert.equal(sync.code, 1);
  assert.match(sync.stderr, /^kindling: no Kindling server at /);
});

test('a bad flag value is its error line and a pointer to --help, not the whole flag list', async () => {
  const runs = await Promise.all([
    runCli(FULL_ENTRY, ['serve', '--port', '99999']),
    runCli(FULL_ENTRY, ['serve', '--gpulayers', 'many']),
    runCli(FULL_ENTRY, ['serve', '--no-such-flag']),
    runCli(FULL_ENTRY, ['generate', 'x', '--max-tokens', 'lots']),
    runCli(FULL_ENTRY, ['serve', '--advertise', 'node-b:5001']),
  ]);
  const [port, gpu, unknown, generate, advertise] = runs;
  for (const run of runs) {
    assert.notEqual(run.code, 0);
    assert.equal(run.stdout, '');
  }
  for (const run of [port, gpu, unknown, advertise]) {
    const lines = run?.stderr.trimEnd().split('\n') ?? [];
    assert.equal(lines.length, 2, run?.stderr);
    assert.equal(lines[1], '(`kindling serve --help` lists every flag)');
  }
  assert.match(port?.stderr ?? '', /--port must be a TCP port from 1 to 65535 \(0 picks any free port\)/);
  assert.doesNotMatch(port?.stderr ?? '', /ERR_SOCKET_BAD_PORT|RangeError/);
  assert.match(gpu?.stderr ?? '', /--gpulayers must be auto or an integer ≥ 0/);
  assert.match(unknown?.stderr ?? '', /unknown option '--no-such-flag'/);
  assert.match(advertise?.stderr ?? '', /"node-b:5001" is not an http:\/\/ or https:\/\/ URL/);
  assert.equal(generate?.stderr.trimEnd().split('\n')[1], '(`kindling generate --help` lists every flag)');
});

test('serve on a port in use names the port and --port, before loading the model', async (t) => {
  const taken = createServer();
  const port = await listen(taken);
  t.after(() => new Promise((resolve) => taken.close(resolve)));
  const run = await runCli(FULL_ENTRY, ['serve', '--port', String(port)]);
  assert.equal(run.code, 2, run.stderr);
  assert.equal(run.stderr.split('\n').filter(Boolean).length, 1, run.stderr);
  assert.match(run.stderr, new RegExp(`^kindling: --port: port ${port} on 127\\.0\\.0\\.1 is already in use`));
  assert.match(run.stderr, /pick another port with --port <n>/);
  assert.doesNotMatch(run.stderr, /EADDRINUSE/);
  assert.equal(run.stdout, '', 'no start line: the server never started');
});
