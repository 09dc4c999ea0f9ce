/**
 * `npm test`: every `*.test.ts` under test/ through node's test runner, one process per file (a crash
 * stays in its file), two files at a time (each model-loading test uses one thread, so two fill the
 * two cores CI has without oversubscribing them).
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname, '..');
const filter = process.argv.slice(2);

function collect(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...collect(path));
    else if (entry.name.endsWith('.test.ts')) out.push(relative(root, path));
  }
  return out.sort();
}

const files = collect(join(root, 'test')).filter((file) => filter.length === 0 || filter.some((f) => file.includes(f)));
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-force-exit', '--test-timeout=300000', ...files],
  { cwd: root, stdio: 'inherit' },
);
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
