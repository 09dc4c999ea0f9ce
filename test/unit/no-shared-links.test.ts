import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { test } from 'node:test';

const root = resolve(import.meta.dirname, '..', '..');
// Built here from parts so that this file does not match itself.
const SHARED = ['..', 'shared', ''].join('/');
const REFERENCE = /(?:\.\.\/)+shared\/[^\s)'"`\]>,;]*/g;

/** Tracked files (git), or every file but build output where the tree is not a git checkout (an archive). */
function repositoryFiles(): string[] {
  try {
    return execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\0')
      .filter(Boolean);
  } catch {
    const out: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        if (['node_modules', 'dist', '.git', '.tmp', '.cache'].includes(entry.name)) continue;
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else out.push(relative(root, path).split(sep).join('/'));
      }
    };
    walk(root);
    return out;
  }
}

test(`no tracked file points at ${SHARED}, which exists beside a working copy but not in a clone`, () => {
  const files = repositoryFiles();
  const tracked = new Set(files);
  const trackedDirs = new Set(
    files.flatMap((file) =>
      file
        .split('/')
        .slice(0, -1)
        .map((_, i, parts) => parts.slice(0, i + 1).join('/')),
    ),
  );
  const broken: string[] = [];
  let scanned = 0;
  for (const file of files) {
    // .ci is the machinery that runs the project, not the project.
    if (file.startsWith('.ci/')) continue;
    const bytes = readFileSync(join(root, file));
    if (bytes.includes(0)) continue;
    scanned += 1;
    const text = bytes.toString('utf8');
    if (!text.includes(SHARED)) continue;
    for (const match of text.matchAll(REFERENCE)) {
      // A relative path into a tracked folder named shared is fine (the imports of src/protocols/shared).
      const target = relative(root, resolve(root, dirname(file), match[0]))
        .split(sep)
        .join('/')
        .replace(/\/$/, '');
      const inside = !target.startsWith('..');
      if (inside && (tracked.has(target) || trackedDirs.has(target))) continue;
      const line = text.slice(0, match.index).split('\n').length;
      broken.push(`${file}:${line}: ${match[0]}`);
    }
  }
  assert.ok(scanned > 100, `scanned ${scanned} files`);
  assert.deepEqual(broken, [], 'links that a fresh clone cannot follow');
});
