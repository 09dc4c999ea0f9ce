import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
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
      // No tracked folder is named shared (protocol helpers live in src/protocols/common), so every such path
      // points outside the clone, or reads as if it did.
      const line = text.slice(0, match.index).split('\n').length;
      broken.push(`${file}:${line}: ${match[0]}`);
    }
  }
  assert.ok(scanned > 100, `scanned ${scanned} files`);
  assert.deepEqual(broken, [], 'links that a fresh clone cannot follow');
});
