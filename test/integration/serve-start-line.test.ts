import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DEADLINE_MS = 60_000;

/** Starts `kindling serve` (the bundled 256-token demo model) and returns its start line, then stops it. */
function startLine(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/kindling.js', 'serve', '--port', '0', ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no start line within ${DEADLINE_MS} ms: ${stderr}`));
    }, DEADLINE_MS);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const line = stdout.split('\n').find((l) => l.startsWith('Kindling '));
      if (line && stdout.includes('\n')) {
        clearTimeout(timer);
        child.kill('SIGKILL');
        resolve(line);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited ${code} before its start line: ${stderr}`));
    });
  });
}

test('the start line says when --contextsize or --threads were lowered, and why', async () => {
  const cores = availableParallelism();
  const asked = await startLine(['--contextsize', '8192', '--threads', String(cores + 7)]);
  assert.match(asked, /, context 256 tokens /);
  assert.match(asked, /; --contextsize 8192 lowered to 256, the context the model was trained on/);
  assert.match(asked, new RegExp(`; --threads ${cores + 7} lowered to ${cores}, the cores of this machine`));

  // Nothing was asked, so nothing was lowered: the default 4096 fitted to the demo model is not news.
  const plain = await startLine([]);
  assert.match(plain, /, context 256 tokens /);
  assert.doesNotMatch(plain, /lowered/);
});
