// `npm ci` (prepare) and `npm start` (prestart) both run this, so every way of starting the server finds the
// web client built, and `npm ci && npm start` builds it once: the second run sees a fresh build and skips.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const index = join(root, 'web', 'dist', 'index.html');
const inputs = ['web/src', 'web/index.html', 'web/vite.config.ts', 'web/build-report.ts', 'package-lock.json'];

function latestMtime(path: string): number {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let latest = 0;
  for (const entry of readdirSync(path)) latest = Math.max(latest, latestMtime(join(path, entry)));
  return latest;
}

function stale(): boolean {
  if (!existsSync(index)) return true;
  const built = statSync(index).mtimeMs;
  return inputs.some((input) => latestMtime(join(root, input)) > built);
}

function viteBin(): string | undefined {
  const bin = join(root, 'node_modules', 'vite', 'bin', 'vite.js');
  return existsSync(bin) ? bin : undefined;
}

if (process.argv.includes('--force') || stale()) {
  const vite = viteBin();
  if (!vite) {
    // `npm ci --omit=dev` installs no Vite; the server still runs and says at `/` how to build the client.
    console.log('kindling: web client not built (Vite is a devDependency; run `npm ci` without --omit=dev)');
  } else {
    const result = spawnSync(
      process.execPath,
      [vite, 'build', '--config', 'web/vite.config.ts', '--logLevel', 'warn'],
      {
        cwd: root,
        stdio: 'inherit',
      },
    );
    if (result.status !== 0) process.exit(result.status ?? 1);
    console.log('kindling: web client built in web/dist');
  }
}
