import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startFakeKobold } from '../support/fake-providers/fake-kobold.ts';
import { startFakeOpenRouter } from '../support/fake-providers/fake-openrouter.ts';
import { runCli as runAnyCli, SDK_CLI } from '../support/run-cli.ts';

// Only the SDK commands: spawning the full CLI loads the server and its engine (~2 s more per process).
const runCli = (args: string[], options: Parameters<typeof runAnyCli>[2] & { entry?: string } = {}) =>
  runAnyCli(options.entry ?? SDK_CLI, args, { deadlineMs: 20_000, ...options });

test('generate streams the answer to stdout and exits 0', async (t) => {
  const fake = await startFakeKobold({ tokenCount: 200 });
  t.after(() => fake.close());
  const run = await runCli(['generate', 'Once upon a time', '--url', fake.url, '--max-tokens', '25', '--seed', '3']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, `${fake.expectedText(3, 25).replace(/\n$/, '')}\n`);
  assert.equal(fake.requests[0]?.path, '/api/extra/generate/stream');
  assert.deepEqual(
    { ...(fake.requests[0]?.body as Record<string, unknown>), genkey: 'K' },
    { prompt: 'Once upon a time', max_length: 25, sampler_seed: 3, trim_stop: true, genkey: 'K' },
  );
});

test('generate - --no-stream reads stdin and uses the sync endpoint; --api openai sends model and key', async (t) => {
  const kobold = await startFakeKobold({ tokenCount: 6 });
  const openrouter = await startFakeOpenRouter({ apiKey: 'k-1', tokenCount: 5 });
  t.after(() => Promise.all([kobold.close(), openrouter.close()]));
  const sync = await runCli(['generate', '-', '--url', kobold.url, '--no-stream'], { stdin: 'from stdin' });
  assert.equal(sync.code, 0, sync.stderr);
  assert.equal(sync.stdout.trimEnd(), kobold.expectedText(1, 6).trimEnd());
  assert.equal(kobold.requests[0]?.path, '/api/v1/generate');
  assert.equal((kobold.requests[0]?.body as Record<string, unknown> | undefined)?.['prompt'], 'from stdin');

  const openai = await runCli([
    'generate',
    'x',
    '--url',
    openrouter.url,
    '--api',
    'openai',
    '--model',
    'fake/model-a',
    '--key',
    'k-1',
  ]);
  assert.equal(openai.code, 0, openai.stderr);
  assert.equal(openai.stdout.trimEnd(), openrouter.expectedText(1, 5).trimEnd());
  assert.equal(openrouter.requests[0]?.headers['authorization'], 'Bearer k-1');
});

test('generate prints one error line and exits 1 when the server refuses', async (t) => {
  const fake = await startFakeOpenRouter({ apiKey: 'right' });
  t.after(() => fake.close());
  const run = await runCli(['generate', 'x', '--url', fake.url, '--api', 'openai', '--key', 'wrong']);
  assert.equal(run.code, 1);
  assert.equal(run.stderr, 'kindling: HTTP 401: No auth credentials found\n');
  assert.equal(run.stdout, '');
});

test('Ctrl-C during generate aborts the generation on the server and exits 130', async (t) => {
  const fake = await startFakeKobold({ tokenCount: 2000, tokenIntervalMs: 5 });
  t.after(() => fake.close());
  let sent = false;
  const run = await runCli(['generate', 'x', '--url', fake.url], {
    onStdout: (text, kill) => {
      if (!sent && text.length > 20) {
        sent = true;
        kill('SIGINT');
      }
    },
  });
  assert.equal(run.code, 130, run.stderr);
  assert.equal(fake.aborts.length, 1, 'the CLI called /api/extra/abort');
  const generation = fake.generations.get(fake.aborts[0] ?? '');
  assert.equal(generation?.events.at(-1)?.finishReason, 'abort');
  assert.ok((generation?.events.length ?? 0) < 2000, 'the server stopped early');
  assert.ok(run.stdout.length > 20 && fake.expectedText(1, 2000).startsWith(run.stdout.trimEnd()));
});

test('chat keeps the conversation: the second turn is sent with the first exchange', async (t) => {
  const fake = await startFakeKobold({ tokenCount: 6 });
  t.after(() => fake.close());
  const run = await runCli(['chat', '--url', fake.url, '--system', 'Be brief.'], {
    stdin: 'Hello\nAnd then?\n/exit\n',
  });
  assert.equal(run.code, 0, run.stderr);
  const reply = fake.expectedText(1, 6).trim();
  assert.equal(run.stdout.split(reply).length - 1, 2, run.stdout);
  const second = fake.requests.filter((r) => r.path === '/api/extra/generate/stream')[1]?.body as Record<
    string,
    unknown
  >;
  assert.equal(second['prompt'], `User: Hello\nAssistant: ${reply}\nUser: And then?\nAssistant:`);
  assert.equal(second['memory'], 'Be brief.');
});

test('the real kindling CLI registers generate', async (t) => {
  const fake = await startFakeKobold({ tokenCount: 4 });
  t.after(() => fake.close());
  const run = await runCli(['generate', 'x', '--url', fake.url], { entry: 'src/cli/main.ts' });
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout.trimEnd(), fake.expectedText(1, 4).trimEnd());
});
