import {
  ALT,
  CHAR,
  CHAR_ALT,
  CHAR_ANY,
  CHAR_NOT,
  CHAR_RNG_UPPER,
  type Element,
  END,
  GBNF_MAX_STACKS,
  RULE_REF,
  TOKEN,
  TOKEN_NOT,
  typeOf,
  valueOfElement,
} from './gbnf-parser.ts';
import { GrammarError } from './gbnf-scanner.ts';

/**
 * llama.cpp's stack expansion (`llama_grammar_advance_stack`), counted with a budget: every distinct path
 * through possibly-empty rules to a terminal is a stack of its own, so nested optional rules can make
 * exponentially many (`a ::= b b`, `b ::= c c`, … each optional). Then a short greedy walk, choosing each step
 * the character that leaves the most stacks, catches grammars whose ambiguity multiplies stacks per character
 * (`r ::= "a" r "b" | "a" r "c" | "d"` doubles them with every `a`).
 */
export class StackSimulator {
  private readonly flat: Element[] = [];
  private readonly ruleStart: number[] = [];
  private work = 0;
  private static readonly WORK_BUDGET = 200_000;
  private static readonly WALK_STEPS = 48;

  constructor(rules: readonly Element[][]) {
    for (const rule of rules) {
      this.ruleStart.push(this.flat.length);
      for (const e of rule) this.flat.push(e);
    }
  }

  check(root: number, nameOf: (rule: number) => string): number {
    const tooMany = (after: string) =>
      new GrammarError(
        `the grammar is too ambiguous: ${after} llama.cpp would track more than ${GBNF_MAX_STACKS} parse stacks at once (${this.hint(nameOf)}): one per alternative or ambiguous parse that could come next, each matched against every token; use fewer alternatives, make them start differently, or use repeats instead of nested optional rules`,
      );
    let stacks = new Map<string, number[]>();
    let p = this.ruleStart[root] as number;
    for (;;) {
      const stack: number[] = [];
      if (!this.endOfSequence(p)) stack.push(p);
      if (!this.advance(stack, stacks)) throw tooMany('at its start');
      while (!this.endOfSequence(p)) p++;
      if (typeOf(this.flat[p] as Element) === ALT) p++;
      else break;
    }
    const initial = stacks.size;
    for (let step = 0; step < StackSimulator.WALK_STEPS && stacks.size > 0; step++) {
      let best: Map<string, number[]> | undefined;
      for (const chr of this.candidates(stacks)) {
        const next = new Map<string, number[]>();
        for (const stack of stacks.values()) {
          if (!this.acceptChar(stack, chr, next)) throw tooMany(`after ${step + 1} character(s)`);
          if (this.work > StackSimulator.WORK_BUDGET) return initial;
        }
        if (!best || next.size > best.size) best = next;
      }
      if (!best || best.size === 0) break;
      stacks = best;
    }
    return initial;
  }

  private lastDeep = -1;
  private hint(nameOf: (rule: number) => string): string {
    if (this.lastDeep < 0) return 'nested optional or ambiguous rules';
    let rule = 0;
    for (let r = 0; r < this.ruleStart.length; r++) if ((this.ruleStart[r] as number) <= this.lastDeep) rule = r;
    return `around rule ${nameOf(rule)}`;
  }

  private endOfSequence(p: number): boolean {
    const t = typeOf(this.flat[p] as Element);
    return t === END || t === ALT;
  }

  /** Adds every stack `stack` expands to; false when the stacks pass the limit. */
  private advance(stack: number[], out: Map<string, number[]>): boolean {
    const todo: number[][] = [stack];
    const seen = new Set<string>();
    while (todo.length > 0) {
      const current = todo.pop() as number[];
      const key = current.join(',');
      if (seen.has(key)) continue;
      seen.add(key);
      this.work += current.length + 1;
      if (seen.size > GBNF_MAX_STACKS * 64) return false;
      if (current.length === 0) {
        out.set(key, current);
      } else {
        const p = current[current.length - 1] as number;
        const e = this.flat[p] as Element;
        if (typeOf(e) === RULE_REF) {
          let sub = this.ruleStart[valueOfElement(e)] as number;
          for (;;) {
            const next = current.slice(0, -1);
            if (!this.endOfSequence(p + 1)) next.push(p + 1);
            if (!this.endOfSequence(sub)) next.push(sub);
            todo.push(next);
            while (!this.endOfSequence(sub)) sub++;
            if (typeOf(this.flat[sub] as Element) === ALT) sub++;
            else break;
          }
        } else {
          this.lastDeep = p;
          out.set(key, current);
        }
      }
      if (out.size > GBNF_MAX_STACKS) return false;
    }
    return true;
  }

  private acceptChar(stack: number[], chr: number, out: Map<string, number[]>): boolean {
    if (stack.length === 0) return true;
    const p = stack[stack.length - 1] as number;
    const t = typeOf(this.flat[p] as Element);
    if (t === TOKEN || t === TOKEN_NOT) return true;
    const [matched, after] = this.matchChar(p, chr);
    if (!matched) return true;
    const next = stack.slice(0, -1);
    if (!this.endOfSequence(after)) next.push(after);
    return this.advance(next, out);
  }

  private matchChar(start: number, chr: number): [boolean, number] {
    let p = start;
    const first = typeOf(this.flat[p] as Element);
    const positive = first === CHAR || first === CHAR_ANY;
    let found = false;
    do {
      const e = this.flat[p] as Element;
      const nextE = this.flat[p + 1] as Element;
      if (typeOf(nextE) === CHAR_RNG_UPPER) {
        found ||= valueOfElement(e) <= chr && chr <= valueOfElement(nextE);
        p += 2;
      } else if (typeOf(e) === CHAR_ANY) {
        found = true;
        p += 1;
      } else {
        found ||= valueOfElement(e) === chr;
        p += 1;
      }
    } while (typeOf(this.flat[p] as Element) === CHAR_ALT);
    return [found === positive, p];
  }

  /** A few characters each stack top accepts: the bounds of its ranges, or one it does not exclude. */
  private candidates(stacks: Map<string, number[]>): number[] {
    const out = new Set<number>();
    for (const stack of stacks.values()) {
      if (stack.length === 0) continue;
      const p = stack[stack.length - 1] as number;
      const t = typeOf(this.flat[p] as Element);
      if (t === CHAR || t === CHAR_ANY) {
        let q = p;
        do {
          const e = this.flat[q] as Element;
          out.add(typeOf(e) === CHAR_ANY ? 97 : Math.max(1, valueOfElement(e)));
          q += typeOf(this.flat[q + 1] as Element) === CHAR_RNG_UPPER ? 2 : 1;
        } while (typeOf(this.flat[q] as Element) === CHAR_ALT);
      } else if (t === CHAR_NOT) {
        for (const chr of [97, 32, 48, 10, 0x4e00]) {
          if (this.matchChar(p, chr)[0]) {
            out.add(chr);
            break;
          }
        }
      }
      if (out.size >= 32) break;
    }
    return [...out];
  }
}
