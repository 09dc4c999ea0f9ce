import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..', '..');
export const webIndex = join(root, 'web', 'dist', 'index.html');
const lock = join(root, 'test', '.tmp', 'web-build.lock');

function latestMtime(dir: string): number {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? latestMtime(path) : statSync(path).mtimeMs);
  }
  return latest;
}

function stale(): boolean {
  // The bundle inlines the SDK, so an SDK change makes it stale as much as an app change.
  const sources = Math.max(latestMtime(join(root, 'web', 'src')), latestMtime(join(root, 'src', 'client')));
  return !existsSync(webIndex) || statSync(webIndex).mtimeMs < sources;
}

/**
 * Builds web/dist when it is missing or older than web/src (about a second). Test files run in parallel, so
 * the build is guarded by a lock directory: one process builds, the others wait for it.
 */
export async function ensureWebBuild(): Promise<string> {
  mkdirSync(join(root, 'test', '.tmp'), { recursive: true });
  for (let i = 0; i < 600 && stale(); i++) {
    try {
      mkdirSync(lock);
    } catch {
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    try {
      if (stale()) {
        execFileSync(
          process.execPath,
          [
            join(root, 'node_modules', 'vite', 'bin', 'vite.js'),
            'build',
            '--config',
            'web/vite.config.ts',
            '--logLevel',
            'warn',
          ],
          {
            cwd: root,
            stdio: 'inherit',
          },
        );
      }
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
  }
  return readFileSync(webIndex, 'utf8');
}
