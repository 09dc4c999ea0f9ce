/**
 * The import graph of the repository and the checks of test/unit/import-rules.test.ts over it: which imports break
 * a rule, and which files or folders import each other in a cycle.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, posix } from 'node:path';
import { importSpecifiers } from './import-specifiers.ts';

/**
 * A target is a repository path (`src/core/x.ts`), `package:<name>` or `node:<name>` (every Node built-in, also
 * one imported without the prefix). In `forbid` and `onlyRepo` a pattern ending in `/` is a folder, `node:` is
 * every built-in, `package:` every package, anything else is one file or package.
 */
export interface ImportRule {
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

const root = join(import.meta.dirname, '..', '..');
const SCANNED = ['src', 'web', 'test', 'bench', 'tools', 'bin'];
const SOURCE = /\.(?:ts|tsx|js|mjs|cjs)$/;

export interface Edge {
  from: string;
  line: number;
  specifier: string;
  to: string;
}

export function sourceFiles(): string[] {
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

export function importEdges(files: string[]): Edge[] {
  return files.flatMap((from) =>
    importSpecifiers(readFileSync(join(root, from), 'utf8')).map(({ specifier, line }) => ({
      from,
      line,
      specifier,
      to: target(from, specifier),
    })),
  );
}

export function matches(path: string, pattern: string): boolean {
  if (pattern.endsWith('/') || pattern.endsWith(':')) return path.startsWith(pattern);
  return path === pattern;
}

const isRepoPath = (to: string) => !to.startsWith('node:') && !to.startsWith('package:');
const describe = (edge: Edge) => `${edge.from}:${edge.line} imports '${edge.specifier}'`;

export interface Violation {
  key: string;
  message: string;
}

export function ruleViolations(rules: ImportRule[], edges: Edge[]): Violation[] {
  const out: Violation[] = [];
  for (const rule of rules) {
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

/** `src/scheduler/x.ts` → `src/scheduler`, `web/src/state/x.ts` → `web/src/state`, `src/main.ts` → itself. */
function folderOf(path: string, cycleRoots: string[]): string | undefined {
  const cycleRoot = [...cycleRoots].sort((a, b) => b.length - a.length).find((r) => path.startsWith(r));
  if (cycleRoot === undefined) return undefined;
  const rest = path.slice(cycleRoot.length).split('/');
  return cycleRoot + (rest.length > 1 ? rest[0] : path.slice(cycleRoot.length));
}

export function cycleViolations(edges: Edge[], cycleRoots: string[]): Violation[] {
  const out: Violation[] = [];
  const files = graphOf(edges, (path) =>
    cycleRoots.some((r) => path.startsWith(r)) && isRepoPath(path) ? path : undefined,
  );
  for (const component of cycles(files)) {
    const path = cyclePath(files, component);
    const steps = path.slice(1).map((to, i) => describe(edges.find((e) => e.from === path[i] && e.to === to)!));
    out.push({ key: `file cycle: ${component.join(', ')}`, message: `an import cycle: ${steps.join('; ')}` });
  }
  const folders = graphOf(edges, (path) => (isRepoPath(path) ? folderOf(path, cycleRoots) : undefined));
  for (const component of cycles(folders)) {
    const members = new Set(component);
    for (const from of component) {
      for (const to of folders.get(from) ?? []) {
        if (!members.has(to) || to === from) continue;
        const examples = edges
          .filter((e) => folderOf(e.from, cycleRoots) === from && folderOf(e.to, cycleRoots) === to)
          .map(describe);
        out.push({
          key: `folder cycle: ${from} → ${to}`,
          message: `${from} and ${to} import each other (through ${component.join(', ')}): ${examples.join('; ')}`,
        });
      }
    }
  }
  return out;
}
