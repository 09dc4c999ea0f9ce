import { ALT, CHAR_ALT, CHAR_RNG_UPPER, type Element, END, RULE_REF, typeOf, valueOfElement } from './gbnf-parser.ts';
import { GrammarError } from './gbnf-scanner.ts';

/**
 * Three checks on what each rule can start with. (1) llama.cpp's own left-recursion check, mirrored: it counts a
 * rule as possibly empty only when one of its alternatives is literally empty, and refuses a cycle through
 * such prefixes. (2) The cost of that check: it is a depth-first search that does not remember finished rules,
 * so a chain of rules each starting with the next one twice (`a ::= b | b "x"`) costs 2^n steps. (3) True left
 * recursion, with "possibly empty" computed properly, which llama.cpp misses: `root ::= a root "x" | "y"` with
 * `a ::= b`, `b ::= ""` makes its stack expansion push a continuation on every turn, forever. A cycle whose
 * references are all last in their alternative (`(ws)*` with an optional `ws`) returns to the same stack,
 * which llama.cpp notices, so only a cycle through a reference followed by more is refused.
 */
export function checkLeftRecursion(rules: Element[][], names: readonly string[], generated: ReadonlySet<number>): void {
  const n = rules.length;
  const name = (id: number) => names[id] ?? String(id);
  const literallyEmpty = rules.map((rule) => {
    let atStart = true;
    for (const e of rule) {
      const t = typeOf(e);
      if (t === ALT || t === END) {
        if (atStart) return true;
        atStart = true;
      } else atStart = false;
    }
    return false;
  });
  const nullable = nullableRules(rules);
  const llamaEdges = startEdges(rules, literallyEmpty).map((edges) => edges.map((edge) => edge.target));
  const cycle = findCycle(llamaEdges);
  if (cycle && new Set(cycle.map(name)).size === 1 && cycle.some((id) => generated.has(id)))
    throw new GrammarError(
      `rule ${name(cycle[0] as number)} repeats (with *, + or {m,}) something that can be literally empty, which llama.cpp refuses as left recursion: make the repeated item consume input`,
    );
  if (cycle)
    throw new GrammarError(
      `rule ${name(cycle[0] as number)} is left-recursive (${[...cycle, cycle[0] as number].map(name).join(' → ')}, each able to start with the next); llama.cpp cannot use left recursion: rewrite it with a repeat, e.g. list ::= item ("," item)*`,
    );
  // (2): steps of llama.cpp's search, counted over the acyclic graph just checked, in reverse topological order.
  const cost = new Array<number>(n).fill(-1);
  for (const start of topologicalOrder(llamaEdges).reverse()) {
    let total = (rules[start] as Element[]).length;
    for (const target of llamaEdges[start] as number[]) total += cost[target] as number;
    cost[start] = Math.min(total, Number.MAX_SAFE_INTEGER);
  }
  const worst = cost.reduce((a, b) => Math.max(a, b), 0);
  if (worst > LEFT_RECURSION_CHECK_BUDGET) {
    const at = cost.indexOf(worst);
    throw new GrammarError(
      `rule ${name(at)} starts with chains of rules that each start with the next several times; llama.cpp's left-recursion check would take about ${worst.toExponential(1)} steps on it`,
    );
  }
  // (3)
  const edges = startEdges(rules, nullable);
  const component = stronglyConnected(edges.map((list) => list.map((edge) => edge.target)));
  for (let r = 0; r < n; r++)
    for (const edge of edges[r] as StartEdge[])
      if (!edge.tail && component[edge.target] === component[r])
        throw new GrammarError(
          `rule ${name(edge.target)} is left-recursive through rules that can match nothing (${name(r)} can start with ${name(edge.target)}, which leads back to ${name(r)}); llama.cpp would expand it forever: make the rules before the recursion consume input`,
        );
}

/** Which rules can match the empty string: a worklist over the alternatives, linear in the grammar. */
function nullableRules(rules: Element[][]): boolean[] {
  const n = rules.length;
  const nullable = new Array<boolean>(n).fill(false);
  const pendingOf: number[] = [];
  const altRule: number[] = [];
  const usersOf: number[][] = Array.from({ length: n }, () => []);
  const queue: number[] = [];
  for (let r = 0; r < n; r++) {
    let pending = 0;
    let terminal = false;
    const refs: number[] = [];
    for (const e of rules[r] as Element[]) {
      const t = typeOf(e);
      if (t === ALT || t === END) {
        const alt = pendingOf.length;
        pendingOf.push(terminal ? -1 : pending);
        altRule.push(r);
        if (!terminal) {
          if (pending === 0 && !nullable[r]) {
            nullable[r] = true;
            queue.push(r);
          }
          for (const ref of refs) usersOf[ref]?.push(alt);
        }
        pending = 0;
        terminal = false;
        refs.length = 0;
      } else if (t === RULE_REF) {
        pending++;
        refs.push(valueOfElement(e));
      } else if (t !== CHAR_ALT && t !== CHAR_RNG_UPPER) terminal = true;
    }
  }
  while (queue.length > 0) {
    const r = queue.pop() as number;
    for (const alt of usersOf[r] as number[]) {
      if ((pendingOf[alt] as number) <= 0) continue;
      pendingOf[alt] = (pendingOf[alt] as number) - 1;
      const owner = altRule[alt] as number;
      if (pendingOf[alt] === 0 && !nullable[owner]) {
        nullable[owner] = true;
        queue.push(owner);
      }
    }
  }
  return nullable;
}

/** Rule → each rule it can start with: references preceded only by references to possibly-empty rules. */
function startEdges(rules: Element[][], empty: readonly boolean[]): StartEdge[][] {
  return rules.map((rule) => {
    const out: StartEdge[] = [];
    let open = true;
    for (let i = 0; i < rule.length; i++) {
      const e = rule[i] as Element;
      const t = typeOf(e);
      if (t === ALT || t === END) open = true;
      else if (!open) continue;
      else if (t === RULE_REF) {
        const target = valueOfElement(e);
        const after = typeOf(rule[i + 1] as Element);
        out.push({ target, tail: after === ALT || after === END });
        if (!empty[target]) open = false;
      } else if (t !== CHAR_ALT && t !== CHAR_RNG_UPPER) open = false;
    }
    return out;
  });
}

interface StartEdge {
  target: number;
  /** The reference is the last element of its alternative (nothing is pushed after it). */
  tail: boolean;
}

/** Steps llama.cpp's left-recursion search may take before the grammar is refused. */
const LEFT_RECURSION_CHECK_BUDGET = 20_000_000;

/**
 * Depth-first over every node, iteratively (rule chains can be deeper than the call stack): `finished` gets each node
 * once everything it points to is done. Stops at the first cycle and returns it as the list of its nodes.
 */
function depthFirst(edges: readonly number[][], finished: (node: number) => void): number[] | undefined {
  const state = new Uint8Array(edges.length); // 0 new, 1 on the path, 2 done
  const next = new Uint32Array(edges.length);
  for (let start = 0; start < edges.length; start++) {
    if (state[start] !== 0) continue;
    const path = [start];
    state[start] = 1;
    while (path.length > 0) {
      const r = path[path.length - 1] as number;
      const out = edges[r] as number[];
      if ((next[r] as number) < out.length) {
        const target = out[next[r] as number] as number;
        next[r] = (next[r] as number) + 1;
        if (state[target] === 1) return path.slice(path.indexOf(target));
        if (state[target] === 0) {
          state[target] = 1;
          path.push(target);
        }
      } else {
        state[r] = 2;
        finished(r);
        path.pop();
      }
    }
  }
  return undefined;
}

/** A cycle in a graph of adjacency lists, as the list of its nodes, or undefined. */
function findCycle(edges: readonly number[][]): number[] | undefined {
  return depthFirst(edges, () => {});
}

/** Nodes of an acyclic graph, each before the nodes it points to. */
function topologicalOrder(edges: readonly number[][]): number[] {
  const order: number[] = [];
  depthFirst(edges, (node) => order.push(node));
  return order.reverse();
}

/** Tarjan's strongly connected components, iteratively: the component number of each node. */
function stronglyConnected(edges: readonly number[][]): Int32Array {
  const n = edges.length;
  const index = new Int32Array(n).fill(-1);
  const low = new Int32Array(n);
  const component = new Int32Array(n).fill(-1);
  const onStack = new Uint8Array(n);
  const next = new Uint32Array(n);
  const stack: number[] = [];
  let counter = 0;
  let components = 0;
  for (let start = 0; start < n; start++) {
    if (index[start] !== -1) continue;
    const path = [start];
    index[start] = low[start] = counter++;
    stack.push(start);
    onStack[start] = 1;
    while (path.length > 0) {
      const v = path[path.length - 1] as number;
      const out = edges[v] as number[];
      if ((next[v] as number) < out.length) {
        const w = out[next[v] as number] as number;
        next[v] = (next[v] as number) + 1;
        if (index[w] === -1) {
          index[w] = low[w] = counter++;
          stack.push(w);
          onStack[w] = 1;
          path.push(w);
        } else if (onStack[w]) low[v] = Math.min(low[v] as number, index[w] as number);
      } else {
        path.pop();
        const parent = path[path.length - 1];
        if (parent !== undefined) low[parent] = Math.min(low[parent] as number, low[v] as number);
        if (low[v] === index[v]) {
          for (;;) {
            const w = stack.pop() as number;
            onStack[w] = 0;
            component[w] = components;
            if (w === v) break;
          }
          components++;
        }
      }
    }
  }
  return component;
}
