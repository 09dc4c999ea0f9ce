import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { RunningServer } from '../../src/main.ts';
import { withDeadline } from '../support/deadline.ts';
import { testModelPath } from '../support/test-model.ts';
import { getJson, postJson, startTestServer } from '../support/test-server.ts';

/**
 * The persistent thread pool (src/engine/llama/persistent-threadpool.ts) sits between node-llama-cpp and every
 * llama_decode call: it must attach to the context, and the batches it forwards must decode exactly as they
 * would without it (same seed, same text).
 */
let server: RunningServer;
let plain: { url: string; banner: string; child: ChildProcess };
const root = join(import.meta.dirname, '..', '..');

/** `kindling serve` in its own process with the pool turned off (a process that loaded it cannot unload it). */
async function startWithoutPool(): Promise<{ url: string; banner: string; child: ChildProcess }> {
  const args = ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--model', testModelPath(), '--port', '0'];
  const child = spawn(
    process.execPath,
    [...args, '--threads', '1', '--parallel', '1', '--contextsize', '512', '--log-level', 'warn'],
    { cwd: root, env: { ...process.env, KINDLING_THREADPOOL: 'off' }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout?.setEncoding('utf8');
  const started = new Promise<{ url: string; banner: string; child: ChildProcess }>((resolve, reject) => {
    child.stdout?.on('data', (chunk: string) => {
      out += chunk;
      const url = /serving \S+ at (http:\/\/\S+) on/.exec(out)?.[1];
      if (url) resolve({ url, banner: out, child });
    });
    child.once('exit', (code) => reject(new Error(`the server without a pool exited (${code}): ${out}`)));
  });
  return withDeadline(started, 120_000, 'the server without a pool to print its start line').catch((error) => {
    child.kill('SIGKILL');
    throw error;
  });
}

const body = { prompt: 'Once upon a time', max_length: 48, sampler_seed: 7, temperature: 0.9, ban_eos_token: true };
/**
 * Each server's first text, from a fresh context: a later request reuses the cached prompt and evaluates only
 * its last token, and on some CPUs (an AVX2 EPYC, not an AMX Xeon) that alone changes the last bits of the
 * logits and so what a random-weight model samples, pool or no pool (the same request twice to one
 * `KINDLING_THREADPOOL=off` server gave two texts).
 */
let pooledText = '';
let unpooledText = '';

const generatedText = async (url: string) =>
  ((await postJson(`${url}/api/v1/generate`, body)).body as { results: [{ text: string }] }).results[0].text;

before(async () => {
  [server, plain] = await Promise.all([startTestServer({ parallel: 1 }), startWithoutPool()]);
  [pooledText, unpooledText] = await Promise.all([generatedText(server.url), generatedText(plain.url)]);
});
after(async () => {
  await server?.close();
  plain?.child.kill('SIGTERM');
  if (plain && plain.child.exitCode === null)
    await withDeadline(once(plain.child, 'exit'), 15_000, 'the server without a pool to exit on SIGTERM').catch(
      (error) => {
        plain.child.kill('SIGKILL');
        throw error;
      },
    );
});

test('the context gets a pool on its first decode, and the engine build says so', async () => {
  const perf = (await getJson(`${server.url}/api/extra/perf`)).body as { thread_pools: number };
  assert.equal(perf.thread_pools, 1);
  assert.match(server.context.engine.model.engineBuild, /, persistent thread pool$/);
});

test('decoding through the pool gives the same text as without it, token for token', async () => {
  assert.ok(pooledText.length > 20);
  assert.equal(pooledText, unpooledText);
});

test('KINDLING_THREADPOOL=off decodes without a pool and reports why', async () => {
  const perf = (await getJson(`${plain.url}/api/extra/perf`)).body as { thread_pools: number };
  assert.equal(perf.thread_pools, 0);
  assert.match(plain.banner, /no persistent thread pool \(KINDLING_THREADPOOL=off\)/);
});
