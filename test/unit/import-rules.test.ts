/**
 * The import rules of docs/layers.md, checked on every import of the repository. A failure names the file, the
 * line and the import, and the rule's reason.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, posix } from 'node:path';
import { test } from 'node:test';
import { importSpecifiers } from '../support/import-specifiers.ts';

/**
 * A target is a repository path (`src/core/x.ts`), `package:<name>` or `node:<name>` (every Node built-in, also
 * one imported without the prefix). In `forbid` and `onlyRepo` a pattern ending in `/` is a folder, `node:` is
 * every built-in, `package:` every package, anything else is one file or package.
 */
interface ImportRule {
  name: string;
  /** Files the rule applies to: folders (ending in `/`) or files. */
  files: string[];
  except?: string[];
  /** Targets these files may not import. */
  forbid?: string[];
  /** Or: the only repository files they may import (packages and built-ins are other rules' concern). */
  onlyRepo?: string[];
  reason: string;
}

const RULES: ImportRule[] = [
  {
    name: 'protocols import only core and protocols',
    files: ['src/protocols/'],
    onlyRepo: ['src/core/', 'src/protocols/'],
    reason:
      'a protocol turns wire JSON into core types and core parts back into wire messages; it never sees the scheduler, the engine, the generation log or the server, so a protocol can be added or tested alone',
  },
  {
    name: 'core imports only core',
    files: ['src/core/'],
    onlyRepo: ['src/core/'],
    forbid: ['package:'],
    reason:
      'core is the vocabulary every layer shares, the SDK and the web client included; it depends on no layer and no package, or each of them would carry it',
  },
  {
    name: 'only the composition imports the server',
    files: ['src/', 'web/', 'tools/', 'bin/'],
    except: ['src/main.ts', 'src/cli/', 'src/server/'],
    forbid: ['src/server/'],
    reason: 'the server is the outermost layer: main.ts composes it and the CLI starts it; nothing below it reaches up',
  },
  {
    name: 'the scheduler imports no server, protocol or config',
    files: ['src/scheduler/'],
    forbid: ['src/server/', 'src/protocols/', 'src/config/'],
    reason:
      'the scheduler works on core requests from any protocol; its defaults are its own, and the config (command-line flags) imports them, not the other way',
  },
  {
    name: 'the engine imports no scheduler, server, protocol, stream or config',
    files: ['src/engine/'],
    forbid: ['src/scheduler/', 'src/server/', 'src/protocols/', 'src/stream/', 'src/config/'],
    reason:
      'the engine decodes tokens for jobs it is given; deciding what to run, and turning tokens into text, is above it',
  },
  {
    name: 'the SDK imports only itself and core',
    files: ['src/client/'],
    onlyRepo: ['src/client/', 'src/core/'],
    reason: 'the SDK is published and bundled into the web client on its own; it cannot carry the server with it',
  },
  {
    name: 'the web client imports only itself, the SDK and core',
    files: ['web/src/'],
    onlyRepo: ['web/src/', 'src/client/', 'src/core/'],
    reason: 'the web client runs in a browser and talks to the server only over HTTP, through the SDK',
  },
  {
    name: 'node-llama-cpp only in src/engine/llama',
    files: ['src/', 'web/', 'bin/'],
    except: ['src/engine/llama/'],
    forbid: ['package:node-llama-cpp'],
    reason:
      'one folder owns the native engine, so an update of node-llama-cpp is checked in one place (tests, benches and the model tools in tools/, which measure, compare or sample with it, may import it)',
  },
  {
    name: 'no Node built-ins in browser code',
    files: ['src/client/', 'web/src/', 'src/core/'],
    forbid: ['node:'],
    reason:
      'the SDK and the web client (and core, which both import) run in browsers, where node:* modules do not exist',
  },
];

/** Folders whose files may not import each other in a cycle, and whose first-level folders may not either. */
const CYCLE_ROOTS = ['src/', 'web/src/'];

/**
 * Violations that main still has while the fixes land in parallel. The lead empties this list as they merge;
 * the test fails if one of them disappears (delete its line) as well as on any new one.
 */
const KNOWN_VIOLATIONS: { key: string; owner: string }[] = [
  ...[
    'anthropic/encode-stream',
    'kobold/encode-stream',
    'kobold/encode-ws',
    'ollama/encode-stream',
    'openai/encode-stream',
  ].map((encoder) => ({
    key: `protocols import only core and protocols: src/protocols/${encoder}.ts → src/stream/generation-log.ts`,
    owner: 'lead: LoggedPart moves to src/core',
  })),
  ...[
    'web/src/api → web/src/state',
    'web/src/prompt → web/src/state',
    'web/src/state → web/src/prompt',
    'web/src/state → web/src/api',
  ].map((edge) => ({ key: `folder cycle: ${edge}`, owner: 'web helper: state no longer imports prompt and api back' })),
];

const root = join(import.meta.dirname, '..', '..');
const SCANNED = ['src', 'web', 'test', 'bench', 'tools', 'bin'];
const SOURCE = /\.(?:ts|tsx|js|mjs|cjs)$/;

interface Edge {
  from: string;
  line: number;
  specifier: string;
  to: string;
}

function sourceFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    if (!existsSync(join(root, dir))) return;
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      if (['node_modules', 'dist', '.tmp', '.cache'].includes(entry.name)) continue;
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (SOURCE.test(entry.name) && !entry.name.endsWith('.d.ts')) out.push(path);
    }
  };
  for (const dir of SCANNED) walk(dir);
  return out.sort();
}

function target(from: string, specifier: string): string {
  if (specifier.startsWith('.')) return posix.normalize(posix.join(posix.dirname(from), specifier));
  if (specifier.startsWith('node:')) return specifier;
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
  return builtinModules.includes(name) ? `node:${name}` : `package:${name}`;
}

function importEdges(files: string[]): Edge[] {
  return files.flatMap((from) =>
    importSpecifiers(readFileSync(join(root, from), 'utf8')).map(({ specifier, line }) => ({
      from,
      line,
      specifier,
      to: target(from, specifier),
    })),
  );
}

function matches(path: string, pattern: string): boolean {
  if (pattern.endsWith('/') || pattern.endsWith(':')) return path.startsWith(pattern);
  return path === pattern;
}

const isRepoPath = (to: string) => !to.startsWith('node:') && !to.startsWith('package:');
const describe = (edge: Edge) => `${edge.from}:${edge.line} imports '${edge.specifier}'`;

interface Violation {
  key: string;
  message: string;
}

function ruleViolations(edges: Edge[]): Violation[] {
  const out: Violation[] = [];
  for (const rule of RULES) {
    for (const edge of edges) {
      if (!rule.files.some((p) => matches(edge.from, p)) || rule.except?.some((p) => matches(edge.from, p))) continue;
      const forbidden =
        rule.forbid?.some((p) => matches(edge.to, p)) ||
        (rule.onlyRepo !== undefined && isRepoPath(edge.to) && !rule.onlyRepo.some((p) => matches(edge.to, p)));
      if (!forbidden) continue;
      out.push({
        key: `${rule.name}: ${edge.from} → ${edge.to}`,
        message: `${describe(edge)}: ${rule.name} (${rule.reason})`,
      });
    }
  }
  return out;
}

/** Strongly connected components with more than one node (or a node that imports itself), by Tarjan. */
function cycles(graph: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (node: string) => {
    index.set(node, index.size);
    low.set(node, index.get(node)!);
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) low.set(node, Math.min(low.get(node)!, index.get(next)!));
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1 || graph.get(node)?.has(node)) found.push(component.sort());
  };
  for (const node of [...graph.keys()].sort()) if (!index.has(node)) visit(node);
  return found;
}

/** One cycle through the component's first member, as a path of nodes (shortest, by breadth-first search). */
function cyclePath(graph: Map<string, Set<string>>, component: string[]): string[] {
  const start = component[0]!;
  const inside = new Set(component);
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const next of graph.get(node) ?? []) {
      if (!inside.has(next)) continue;
      if (next === start) {
        const path = [start];
        for (let at: string | undefined = node; at !== start && at !== undefined; at = previous.get(at))
          path.splice(1, 0, at);
        return [...path, start];
      }
      if (!previous.has(next)) {
        previous.set(next, node);
        queue.push(next);
      }
    }
  }
  return component;
}

function graphOf(edges: Edge[], node: (path: string) => string | undefined): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const edge of edges) {
    const from = node(edge.from);
    const to = node(edge.to);
    if (from === undefined || to === undefined || (from === to && edge.from !== edge.to)) continue;
    if (!graph.has(from)) graph.set(from, new Set());
    graph.get(from)!.add(to);
  }
  return graph;
}

const inCycleRoot = (path: string) => CYCLE_ROOTS.some((r) => path.startsWith(r));

/** `src/scheduler/x.ts` → `src/scheduler`, `web/src/state/x.ts` → `web/src/state`, `src/main.ts` → itself. */
function folderOf(path: string): string | undefined {
  const cycleRoot = [...CYCLE_ROOTS].sort((a, b) => b.length - a.length).find((r) => path.startsWith(r));
  if (cycleRoot === undefined) return undefined;
  const rest = path.slice(cycleRoot.length).split('/');
  return cycleRoot + (rest.length > 1 ? rest[0] : path.slice(cycleRoot.length));
}

function cycleViolations(edges: Edge[]): Violation[] {
  const out: Violation[] = [];
  const files = graphOf(edges, (path) => (inCycleRoot(path) && isRepoPath(path) ? path : undefined));
  for (const component of cycles(files)) {
    const path = cyclePath(files, component);
    const steps = path.slice(1).map((to, i) => describe(edges.find((e) => e.from === path[i] && e.to === to)!));
    out.push({ key: `file cycle: ${component.join(', ')}`, message: `an import cycle: ${steps.join('; ')}` });
  }
  const folders = graphOf(edges, (path) => (isRepoPath(path) ? folderOf(path) : undefined));
  for (const component of cycles(folders)) {
    const members = new Set(component);
    for (const from of component) {
      for (const to of folders.get(from) ?? []) {
        if (!members.has(to) || to === from) continue;
        const examples = edges.filter((e) => folderOf(e.from) === from && folderOf(e.to) === to).map(describe);
        out.push({
          key: `folder cycle: ${from} → ${to}`,
          message: `${from} and ${to} import each other (through ${component.join(', ')}): ${examples.join('; ')}`,
        });
      }
    }
  }
  return out;
}

test('the scanner finds every form of import, and none in comments, strings or templates', () => {
  const source = [
    "import a from './a.ts';",
    'import type { B } from "./b.ts";',
    "import {\n  c,\n  type D,\n} from './c.ts';",
    "import './side.ts';",
    "export { e } from './e.ts';",
    "export * as f from './f.ts';",
    "export type { G } from './g.ts';",
    'export const x = \'import y from "./no-1.ts"\';',
    "// import z from './no-2.ts'",
    "/* export * from './no-3.ts' */",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: this is source text for the scanner, with a template in it
    "const t = `import q from './no-4.ts' ${`${1}`} import r from './no-5.ts'`;",
    "const re = /import from '.\\/no-6.ts'/g;",
    'const m = import.meta.url;',
    "const d = await import('./dynamic.ts');",
    "const o = { import: 'x', from: './no-7.ts' };",
    "import { from } from './h.ts';",
    "import * as ns from 'node:fs';",
  ].join('\n');
  assert.deepEqual(
    importSpecifiers(source).map((s) => `${s.line}:${s.specifier}`),
    ['1:./a.ts', '2:./b.ts', '6:./c.ts', '7:./side.ts', '8:./e.ts', '9:./f.ts', '10:./g.ts'].concat([
      '17:./dynamic.ts',
      '19:./h.ts',
      '20:node:fs',
    ]),
  );
});

test('each rule catches what it forbids and lets the rest through', () => {
  const edge = (from: string, to: string): Edge => ({ from, line: 1, specifier: to, to });
  const caught = ruleViolations([
    edge('src/protocols/openai/encode-stream.ts', 'src/stream/generation-log.ts'),
    edge('src/protocols/openai/decode.ts', 'src/core/generation-request.ts'),
    edge('src/protocols/openai/wire.ts', 'package:typebox'),
    edge('src/core/stream-part.ts', 'src/engine/engine.ts'),
    edge('src/core/gbnf-check.ts', 'package:typebox'),
    edge('src/core/kindling-error.ts', 'node:util'),
    edge('src/scheduler/scheduler.ts', 'src/config/server-config.ts'),
    edge('src/engine/llama/llama-engine.ts', 'src/stream/text-pipeline.ts'),
    edge('src/engine/llama/llama-engine.ts', 'package:node-llama-cpp'),
    edge('src/engine/token-cuts.ts', 'package:node-llama-cpp'),
    edge('src/stream/generation-log.ts', 'src/server/app.ts'),
    edge('src/cli/main.ts', 'src/server/app.ts'),
    edge('test/unit/x.test.ts', 'src/server/app.ts'),
    edge('src/client/http-request.ts', 'node:http'),
    edge('web/src/state/connection.ts', 'src/scheduler/scheduler.ts'),
  ]).map((v) => v.key.split(':')[0]);
  assert.deepEqual(caught, [
    'protocols import only core and protocols',
    'core imports only core',
    'core imports only core',
    'only the composition imports the server',
    'the scheduler imports no server, protocol or config',
    'the engine imports no scheduler, server, protocol, stream or config',
    'the web client imports only itself, the SDK and core',
    'node-llama-cpp only in src/engine/llama',
    'no Node built-ins in browser code',
    'no Node built-ins in browser code',
  ]);
});

test('the cycle check finds file and folder cycles', () => {
  const edge = (from: string, to: string): Edge => ({ from, line: 1, specifier: to, to });
  const found = cycleViolations([
    edge('src/a/one.ts', 'src/a/two.ts'),
    edge('src/a/two.ts', 'src/a/one.ts'),
    edge('web/src/state/s.ts', 'web/src/prompt/p.ts'),
    edge('web/src/prompt/q.ts', 'web/src/state/t.ts'),
    edge('src/b/x.ts', 'src/core/y.ts'),
  ]).map((v) => v.key);
  assert.deepEqual(found.sort(), [
    'file cycle: src/a/one.ts, src/a/two.ts',
    'folder cycle: web/src/prompt → web/src/state',
    'folder cycle: web/src/state → web/src/prompt',
  ]);
});

test('imports follow docs/layers.md', () => {
  const files = sourceFiles();
  const edges = importEdges(files);
  for (const rule of RULES) {
    // A rule about a folder that was renamed away would pass forever.
    assert.ok(
      files.some((f) => rule.files.some((p) => matches(f, p)) && !rule.except?.some((p) => matches(f, p))),
      `rule "${rule.name}" applies to no file`,
    );
  }
  assert.ok(edges.length > 500, `only ${edges.length} imports found`);
  const violations = [...ruleViolations(edges), ...cycleViolations(edges)];
  const known = new Set(KNOWN_VIOLATIONS.map((v) => v.key));
  const found = new Set(violations.map((v) => v.key));
  const fresh = violations.filter((v) => !known.has(v.key)).map((v) => `${v.message}\n    key: ${v.key}`);
  const fixed = KNOWN_VIOLATIONS.filter((v) => !found.has(v.key)).map((v) => `${v.key} (${v.owner})`);
  assert.deepEqual(fresh, [], 'imports against the rules');
  assert.deepEqual(fixed, [], 'known violations that are gone: delete them from KNOWN_VIOLATIONS');
});
