import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WEB_SRC = join(ROOT, 'web/src');
const CLIENT = join(ROOT, 'src/client');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && /\.tsx?$/.test(entry.name))
    .map((entry) => join(entry.parentPath, entry.name));
}

function specifiers(file: string): string[] {
  const source = readFileSync(file, 'utf8');
  return [...source.matchAll(/\b(?:from|import)\s+'([^']+)'/g)].map((match) => match[1] ?? '');
}

/** The first folder under web/src a file lives in; files directly in web/src (main.tsx) are the root. */
function folderOf(file: string): string {
  const parts = relative(WEB_SRC, file).split('/');
  return parts.length > 1 ? (parts[0] ?? '.') : '.';
}

function folderGraph(): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const file of sourceFiles(WEB_SRC)) {
    const from = folderOf(file);
    for (const specifier of specifiers(file)) {
      if (!specifier.startsWith('.')) continue;
      const target = resolve(dirname(file), specifier);
      if (!target.startsWith(`${WEB_SRC}/`)) continue;
      const to = folderOf(target);
      if (to !== from) graph.set(from, (graph.get(from) ?? new Set()).add(to));
    }
  }
  return graph;
}

function findCycle(graph: Map<string, Set<string>>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (node: string): string[] | undefined => {
    if (state.get(node) === 'done') return undefined;
    if (state.get(node) === 'open') return [...path.slice(path.indexOf(node)), node];
    state.set(node, 'open');
    path.push(node);
    for (const next of graph.get(node) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(node, 'done');
    return undefined;
  };
  for (const node of graph.keys()) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return undefined;
}

test('the folders of web/src import each other without a cycle', (t) => {
  const graph = folderGraph();
  t.diagnostic([...graph].map(([from, to]) => `${from} -> ${[...to].sort().join(', ')}`).join('; '));
  assert.ok(graph.size > 3, 'the graph was read');
  const cycle = findCycle(graph);
  assert.equal(cycle, undefined, `folder cycle: ${cycle?.join(' -> ')}`);
});

test('web/src reaches the SDK only through src/client/index.ts', () => {
  const index = join(CLIENT, 'index.ts');
  let imports = 0;
  for (const file of sourceFiles(WEB_SRC)) {
    for (const specifier of specifiers(file)) {
      const target = resolve(dirname(file), specifier);
      if (!target.startsWith(`${CLIENT}/`)) continue;
      imports += 1;
      assert.equal(target, index, `${relative(ROOT, file)} imports ${specifier}`);
    }
  }
  assert.ok(imports > 0, 'the app imports the SDK');
});

test('the browser code (web/src and src/client) imports no node: module', () => {
  const files = [...sourceFiles(WEB_SRC), ...sourceFiles(CLIENT)];
  assert.ok(files.length > 40);
  for (const file of files) {
    for (const specifier of specifiers(file)) {
      assert.ok(!specifier.startsWith('node:'), `${relative(ROOT, file)} imports ${specifier}`);
    }
  }
});
