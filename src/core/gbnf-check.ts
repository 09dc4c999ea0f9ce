import { KindlingError } from './kindling-error.ts';

/**
 * Our own check of a GBNF grammar, run before a request is submitted, because llama.cpp's parser is not safe to
 * hand client text: `"a"{3,1}` makes it create 2^64 rules (the server stops answering and eats memory until the
 * kernel kills it), a left recursion hidden behind an empty rule makes its stack expansion grow forever, and a
 * terminal no token can match (`[\x00]`: token texts never contain NUL) fails only at the first sampled token.
 *
 * The parser mirrors llama.cpp's `llama_grammar_parser` (src/llama-grammar.cpp) token for token, so it accepts
 * exactly the texts llama.cpp accepts (comments, `::=`, `|`, groups, literals and classes with `\x` `\u` `\U`
 * `\t` `\n` `\r` `\\` `\"` `\[` `\]` `\-` escapes, `.`, `* + ? {m} {m,} {m,n}`, `<[id]>` / `!<[id]>` tokens),
 * and builds the same rules llama.cpp would build, within the limits below, checked before anything is built.
 * Every step is linear in the text or bounded by a limit, so it always ends quickly. A rejection is a
 * `KindlingError` 400 naming the rule and what is wrong.
 */

/** Longest grammar text, in characters. */
export const GBNF_MAX_CHARS = 100_000;
/** Largest `m` and `n` in `{m}`, `{m,}`, `{m,n}`. */
export const GBNF_MAX_REPEAT = 1000;
/** Deepest nesting of parentheses. */
export const GBNF_MAX_NESTING = 64;
/** Most rules after llama.cpp expands groups and repeats into rules of their own. */
export const GBNF_MAX_RULES = 10_000;
/** Most grammar elements (characters, references, alternatives) after that expansion. */
export const GBNF_MAX_ELEMENTS = 250_000;
/** llama.cpp's own bound: rules inside a repeated item times its repeat count must stay below this. */
export const GBNF_MAX_REPEATED_RULES = 2000;
/**
 * Most parse stacks llama.cpp may track at once (one per alternative or ambiguous parse that could come next).
 * llama.cpp deduplicates them quadratically on every character and matches each against every token: measured,
 * 3000 parallel alternatives cost 45 ms per character, and `r ::= "a" r "b" | "a" r "c" | "d"` (which doubles
 * them per `a`) 1 s at 12 characters and 490 s at 16.
 */
export const GBNF_MAX_STACKS = 1024;
/** Largest token id in `<[id]>` (llama.cpp keeps 32 bits and would wrap a larger one). */
export const GBNF_MAX_TOKEN_ID = 0xffffffff;

const END = 0;
const ALT = 1;
const RULE_REF = 2;
const CHAR = 3;
const CHAR_NOT = 4;
const CHAR_RNG_UPPER = 5;
const CHAR_ALT = 6;
const CHAR_ANY = 7;
const TOKEN = 8;
const TOKEN_NOT = 9;

/** An element as llama.cpp stores it: `value * 16 + type` (values are at most 32 bits, so this stays exact). */
type Element = number;
const el = (type: number, value: number): Element => value * 16 + type;
const typeOf = (e: Element): number => e % 16;
const valueOfElement = (e: Element): number => Math.floor(e / 16);
const MAX_CODE_POINT = 0x10ffff;
const HEX_DIGITS = /^[0-9a-fA-F]+$/;

/** What the check learned, for tests and for callers that want the size. */
export interface GbnfSummary {
  rules: number;
  elements: number;
  initialStacks: number;
}

class GrammarError extends Error {}

const accepted = new Map<string, GbnfSummary>();

/** Throws a 400 `KindlingError` for `field` if llama.cpp cannot safely use `text` as a grammar. */
export function checkGbnf(text: string, field = 'grammar'): GbnfSummary {
  const known = accepted.get(text);
  if (known) return known;
  try {
    const summary = new GbnfChecker(text).run();
    // Clients send the same grammar again and again, and a converted schema is checked twice on its way.
    accepted.set(text, summary);
    if (accepted.size > 64) accepted.delete(accepted.keys().next().value as string);
    return summary;
  } catch (error) {
    if (error instanceof GrammarError) throw KindlingError.badInput(field, error.message);
    if (error instanceof RangeError)
      // Not expected (every loop and recursion is bounded), but a grammar must never turn into a 500.
      throw KindlingError.badInput(field, `the grammar is too complex to check (${error.message})`);
    throw error;
  }
}

class GbnfChecker {
  private pos = 0;
  private readonly symbols = new Map<string, number>();
  private readonly names: string[] = [];
  private readonly rules: (Element[] | undefined)[] = [];
  /** Where each symbol was first used, for "used but never defined" messages. */
  private readonly firstUse = new Map<number, { rule: string; at: number }>();
  private elements = 0;
  /** Ids of the rules llama.cpp makes for groups and repeats. */
  private readonly generated = new Set<number>();
  private depth = 0;
  private currentRule = '';

  constructor(private readonly src: string) {}

  run(): GbnfSummary {
    if (this.src.length > GBNF_MAX_CHARS)
      throw new GrammarError(`the grammar is ${this.src.length} characters long; the limit is ${GBNF_MAX_CHARS}`);
    const nul = this.src.indexOf('\u0000');
    if (nul >= 0)
      throw new GrammarError(
        `the grammar text contains a NUL character (U+0000) at ${this.where(nul)}: llama.cpp would stop reading there`,
      );
    this.pos = this.space(0, true);
    while (this.pos < this.src.length) this.parseRule();
    return this.validate();
  }

  // ---- the parser (same structure and names as llama.cpp's) ----

  private fail(message: string, at = this.pos): never {
    const rule = this.currentRule ? `rule ${this.currentRule}: ` : '';
    throw new GrammarError(`${rule}${message} at ${this.where(at)}`);
  }

  private where(at: number): string {
    let line = 1;
    let lineStart = 0;
    for (let i = 0; i < at && i < this.src.length; i++) {
      if (this.src[i] === '\n') {
        line++;
        lineStart = i + 1;
      }
    }
    const near = this.src.slice(at, at + 20).replace(/\r?\n.*$/s, '');
    return `line ${line}, column ${at - lineStart + 1}${near ? ` (near ${JSON.stringify(near)})` : ' (end of line)'}`;
  }

  private ch(at: number): string {
    return this.src[at] ?? '';
  }

  private space(from: number, newlineOk: boolean): number {
    let p = from;
    for (;;) {
      const c = this.ch(p);
      if (c === ' ' || c === '\t' || (newlineOk && (c === '\r' || c === '\n'))) p++;
      else if (c === '#') {
        while (p < this.src.length && this.ch(p) !== '\r' && this.ch(p) !== '\n') p++;
      } else return p;
    }
  }

  private static isWordChar(c: string): boolean {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c === '-';
  }

  private static isDigit(c: string): boolean {
    return c >= '0' && c <= '9';
  }

  private name(from: number): number {
    let p = from;
    while (GbnfChecker.isWordChar(this.ch(p))) p++;
    if (p === from) this.fail('expecting a rule name ([a-zA-Z0-9-]+)', from);
    return p;
  }

  /** Digits as a number; past 15 digits (beyond every limit) the value is capped, never infinite. */
  private int(from: number): [value: number, end: number] {
    let p = from;
    while (GbnfChecker.isDigit(this.ch(p))) p++;
    if (p === from) this.fail('expecting an integer', from);
    const digits = this.src.slice(from, p).replace(/^0+(?=\d)/, '');
    return [digits.length > 15 ? 1e15 : Number(digits), p];
  }

  private symbolId(name: string): number {
    let id = this.symbols.get(name);
    if (id === undefined) {
      id = this.symbols.size;
      this.symbols.set(name, id);
      this.names[id] = name;
    }
    return id;
  }

  private generateSymbolId(base: string): number {
    if (this.symbols.size >= GBNF_MAX_RULES)
      this.fail(`the grammar expands to more than ${GBNF_MAX_RULES} rules (every group and repeat adds rules)`);
    const id = this.symbols.size;
    this.generated.add(id);
    // llama.cpp's naming; a clash with a user's rule of that name replaces its id, as it does there.
    const name = `${base}_${id}`;
    this.symbols.set(name, id);
    this.names[id] = base;
    return id;
  }

  private addRule(id: number, rule: Element[]): void {
    while (this.rules.length <= id) this.rules.push(undefined);
    this.rules[id] = rule;
  }

  private push(rule: Element[], e: Element): void {
    if (++this.elements > GBNF_MAX_ELEMENTS)
      this.fail(`the grammar expands to more than ${GBNF_MAX_ELEMENTS} elements (repeats copy what they repeat)`);
    rule.push(e);
  }

  private hex(from: number, size: number): [number, number] {
    const digits = this.src.slice(from, from + size);
    if (digits.length !== size || !HEX_DIGITS.test(digits))
      this.fail(`expecting ${size} hex digits after \\${size === 2 ? 'x' : size === 4 ? 'u' : 'U'}`, from);
    return [Number.parseInt(digits, 16), from + size];
  }

  /** One character of a literal or class: an escape or one code point. */
  private char(from: number): [number, number] {
    const c = this.ch(from);
    if (c === '\\') {
      const e = this.ch(from + 1);
      let result: [number, number];
      switch (e) {
        case 'x':
          result = this.hex(from + 2, 2);
          break;
        case 'u':
          result = this.hex(from + 2, 4);
          break;
        case 'U':
          result = this.hex(from + 2, 8);
          break;
        case 't':
          return [9, from + 2];
        case 'r':
          return [13, from + 2];
        case 'n':
          return [10, from + 2];
        case '\\':
        case '"':
        case '[':
        case ']':
        case '-':
          return [e.charCodeAt(0), from + 2];
        default:
          this.fail(
            `unknown escape \\${e || '(end)'} (llama.cpp knows \\x.. \\u.... \\U........ \\t \\n \\r \\\\ \\" \\[ \\] \\-)`,
            from,
          );
      }
      if (result[0] > MAX_CODE_POINT)
        this.fail(`\\U${result[0].toString(16).toUpperCase()} is past the last Unicode code point (10FFFF)`, from);
      return result;
    }
    if (from >= this.src.length) this.fail('unexpected end of input', from);
    const cp = this.src.codePointAt(from) as number;
    return [cp, from + (cp > 0xffff ? 2 : 1)];
  }

  private parseRule(): void {
    if (this.ch(this.pos) === '|')
      this.fail(
        'unexpected | at the start of a line (an alternative on a new line must follow a | at the end of the previous line, or sit inside parentheses)',
      );
    const nameEnd = this.name(this.pos);
    const name = this.src.slice(this.pos, nameEnd);
    this.currentRule = name;
    let p = this.space(nameEnd, false);
    const id = this.symbolId(name);
    if (this.src.slice(p, p + 3) !== '::=') this.fail('expecting ::=', p);
    p = this.space(p + 3, true);
    this.pos = p;
    this.alternates(name, id, false);
    p = this.pos;
    const c = this.ch(p);
    if (c === '\r') p += this.ch(p + 1) === '\n' ? 2 : 1;
    else if (c === '\n') p++;
    else if (p < this.src.length) this.fail('expecting a newline or the end of the grammar', p);
    this.pos = this.space(p, true);
    this.currentRule = '';
  }

  private alternates(ruleName: string, ruleId: number, nested: boolean): void {
    const rule: Element[] = [];
    this.sequence(ruleName, rule, nested);
    while (this.ch(this.pos) === '|') {
      this.push(rule, el(ALT, 0));
      this.pos = this.space(this.pos + 1, true);
      this.sequence(ruleName, rule, nested);
    }
    this.push(rule, el(END, 0));
    this.addRule(ruleId, rule);
  }

  private sequence(ruleName: string, rule: Element[], nested: boolean): void {
    let lastSymStart = rule.length;
    let prevRules = 1;

    const repeat = (min: number, max: number, at: number, written: string) => {
      const noMax = max === Number.POSITIVE_INFINITY;
      if (lastSymStart === rule.length) this.fail(`${written} has nothing before it to repeat`, at);
      if (min > max) this.fail(`repeat ${written} has a minimum above its maximum`, at);
      const prev = rule.slice(lastSymStart);
      let totalRules = 1;
      if (!noMax && max > 0) totalRules = max;
      else if (min > 0) totalRules = min;
      if (prevRules * totalRules >= GBNF_MAX_REPEATED_RULES)
        this.fail(
          `repeat ${written} of an item that holds ${prevRules} rule(s) makes ${prevRules * totalRules} rules; llama.cpp allows fewer than ${GBNF_MAX_REPEATED_RULES} (repeat less, or nest fewer repeats)`,
          at,
        );
      const optional = noMax ? 1 : max - min;
      const projected = prev.length * Math.max(0, min - 1) + optional * (prev.length + 3) + 1;
      if (this.elements + projected > GBNF_MAX_ELEMENTS)
        this.fail(
          `repeat ${written} expands the grammar past ${GBNF_MAX_ELEMENTS} elements (it copies what it repeats)`,
          at,
        );
      if (this.symbols.size + optional > GBNF_MAX_RULES)
        this.fail(`repeat ${written} expands the grammar past ${GBNF_MAX_RULES} rules`, at);
      if (min === 0) {
        this.elements -= rule.length - lastSymStart;
        rule.length = lastSymStart;
      } else for (let i = 1; i < min; i++) for (const e of prev) this.push(rule, e);
      let lastRecRuleId = 0;
      for (let i = 0; i < optional; i++) {
        const recRule = prev.slice();
        this.elements += recRule.length;
        const recRuleId = this.generateSymbolId(ruleName);
        if (i > 0 || noMax) this.push(recRule, el(RULE_REF, noMax ? recRuleId : lastRecRuleId));
        this.push(recRule, el(ALT, 0));
        this.push(recRule, el(END, 0));
        this.addRule(recRuleId, recRule);
        lastRecRuleId = recRuleId;
      }
      if (optional > 0) this.push(rule, el(RULE_REF, lastRecRuleId));
      prevRules *= totalRules;
    };

    for (;;) {
      const start = this.pos;
      const c = this.ch(start);
      if (c === '"') {
        let p = start + 1;
        lastSymStart = rule.length;
        prevRules = 1;
        while (this.ch(p) !== '"') {
          if (p >= this.src.length) this.fail('unterminated string literal', start);
          const [cp, next] = this.char(p);
          if (cp === 0)
            this.fail('a string literal holds \\x00 (NUL), which no token can produce, so generation would fail', p);
          this.push(rule, el(CHAR, cp));
          p = next;
        }
        this.pos = this.space(p + 1, nested);
      } else if (c === '[') {
        let p = start + 1;
        let negated = false;
        if (this.ch(p) === '^') {
          negated = true;
          p++;
        }
        lastSymStart = rule.length;
        prevRules = 1;
        const ranges: [number, number][] = [];
        while (this.ch(p) !== ']') {
          if (p >= this.src.length) this.fail('unterminated character class', start);
          const itemStart = p;
          const [low, next] = this.char(p);
          p = next;
          this.push(rule, el(rule.length > lastSymStart ? CHAR_ALT : negated ? CHAR_NOT : CHAR, low));
          let high = low;
          if (this.ch(p) === '-' && this.ch(p + 1) !== ']') {
            if (p + 1 >= this.src.length) this.fail('unterminated character class', start);
            const [upper, after] = this.char(p + 1);
            if (upper < low)
              this.fail(
                `range ${this.src.slice(itemStart, after)} is reversed (its start is above its end)`,
                itemStart,
              );
            high = upper;
            p = after;
            this.push(rule, el(CHAR_RNG_UPPER, upper));
          }
          ranges.push([low, high]);
        }
        const written = this.src.slice(start, p + 1);
        if (ranges.length === 0)
          this.fail(`${written} is an empty character class (llama.cpp would read it as matching nothing)`, start);
        if (!classMatchesSomething(ranges, negated))
          this.fail(
            `${written} matches no character a token can produce (token texts never contain NUL, and nothing lies past U+10FFFF)`,
            start,
          );
        this.pos = this.space(p + 1, nested);
      } else if (c === '<' || c === '!') {
        let p = start;
        let type = TOKEN;
        if (c === '!') {
          type = TOKEN_NOT;
          p++;
        }
        if (this.ch(p) !== '<') this.fail('expecting < after !', p);
        if (this.ch(p + 1) !== '[')
          this.fail('tokens must be written by id, <[123]> (token texts such as <think> need a vocabulary)', p);
        const [id, end] = this.int(p + 2);
        if (this.ch(end) !== ']' || this.ch(end + 1) !== '>') this.fail('expecting ]> after the token id', end);
        if (id > GBNF_MAX_TOKEN_ID) this.fail(`token id ${this.src.slice(p + 2, end)} is past ${GBNF_MAX_TOKEN_ID}`, p);
        lastSymStart = rule.length;
        prevRules = 1;
        this.push(rule, el(type, id));
        this.pos = this.space(end + 2, nested);
      } else if (GbnfChecker.isWordChar(c)) {
        const end = this.name(start);
        const refId = this.symbolId(this.src.slice(start, end));
        if (!this.firstUse.has(refId)) this.firstUse.set(refId, { rule: this.currentRule, at: start });
        this.pos = this.space(end, nested);
        lastSymStart = rule.length;
        prevRules = 1;
        this.push(rule, el(RULE_REF, refId));
      } else if (c === '(') {
        if (++this.depth > GBNF_MAX_NESTING)
          this.fail(`parentheses nest deeper than ${GBNF_MAX_NESTING} levels`, start);
        this.pos = this.space(start + 1, true);
        const before = this.symbols.size;
        const subRuleId = this.generateSymbolId(ruleName);
        this.alternates(ruleName, subRuleId, true);
        prevRules = Math.max(1, this.symbols.size - before);
        lastSymStart = rule.length;
        this.push(rule, el(RULE_REF, subRuleId));
        if (this.ch(this.pos) !== ')') this.fail(`expecting ) to close the ( at ${this.where(start)}`);
        this.depth--;
        this.pos = this.space(this.pos + 1, nested);
      } else if (c === '.') {
        lastSymStart = rule.length;
        prevRules = 1;
        this.push(rule, el(CHAR_ANY, 0));
        this.pos = this.space(start + 1, nested);
      } else if (c === '*' || c === '+' || c === '?') {
        this.pos = this.space(start + 1, nested);
        if (c === '*') repeat(0, Number.POSITIVE_INFINITY, start, '*');
        else if (c === '+') repeat(1, Number.POSITIVE_INFINITY, start, '+');
        else repeat(0, 1, start, '?');
      } else if (c === '{') {
        let p = this.space(start + 1, nested);
        if (!GbnfChecker.isDigit(this.ch(p))) this.fail('expecting an integer after {', p);
        const [min, minEnd] = this.int(p);
        p = this.space(minEnd, nested);
        let max = Number.POSITIVE_INFINITY;
        if (this.ch(p) === '}') {
          max = min;
          p++;
        } else if (this.ch(p) === ',') {
          p = this.space(p + 1, nested);
          if (GbnfChecker.isDigit(this.ch(p))) {
            const [n, end] = this.int(p);
            max = n;
            p = this.space(end, nested);
          }
          if (this.ch(p) !== '}') this.fail('expecting } to end the repeat', p);
          p++;
        } else this.fail('expecting , or } in the repeat', p);
        const written = this.src.slice(start, p);
        if (min > GBNF_MAX_REPEAT || (max !== Number.POSITIVE_INFINITY && max > GBNF_MAX_REPEAT))
          this.fail(`repeat ${written} is above the limit of ${GBNF_MAX_REPEAT}`, start);
        this.pos = this.space(p, nested);
        repeat(min, max, start, written);
      } else return;
    }
  }

  // ---- checks on the rules llama.cpp would build ----

  private validate(): GbnfSummary {
    if (this.rules.length === 0) throw new GrammarError('the grammar defines no rules');
    for (let id = 0; id < this.symbols.size; id++) {
      if (this.rules[id] === undefined) {
        const use = this.firstUse.get(id);
        const name = this.names[id] ?? String(id);
        const where = use ? ` (used in rule ${use.rule} at ${this.where(use.at)})` : '';
        throw new GrammarError(`rule ${name} is used but never defined${where}`);
      }
    }
    const root = this.symbols.get('root');
    if (root === undefined) throw new GrammarError('the grammar has no root rule (write root ::= …)');
    const rules = this.rules as Element[][];
    this.checkLeftRecursion(rules);
    const initialStacks = new StackSimulator(rules).check(root, (rule) => this.names[rule] ?? String(rule));
    return { rules: rules.length, elements: this.elements, initialStacks };
  }

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
  private checkLeftRecursion(rules: Element[][]): void {
    const n = rules.length;
    const name = (id: number) => this.names[id] ?? String(id);
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
    const nullable = this.nullableRules(rules);
    const llamaEdges = this.startEdges(rules, literallyEmpty).map((edges) => edges.map((edge) => edge.target));
    const cycle = findCycle(llamaEdges);
    if (cycle && new Set(cycle.map(name)).size === 1 && cycle.some((id) => this.generated.has(id)))
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
    const edges = this.startEdges(rules, nullable);
    const component = stronglyConnected(edges.map((list) => list.map((edge) => edge.target)));
    for (let r = 0; r < n; r++)
      for (const edge of edges[r] as StartEdge[])
        if (!edge.tail && component[edge.target] === component[r])
          throw new GrammarError(
            `rule ${name(edge.target)} is left-recursive through rules that can match nothing (${name(r)} can start with ${name(edge.target)}, which leads back to ${name(r)}); llama.cpp would expand it forever: make the rules before the recursion consume input`,
          );
  }

  /** Which rules can match the empty string: a worklist over the alternatives, linear in the grammar. */
  private nullableRules(rules: Element[][]): boolean[] {
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
  private startEdges(rules: Element[][], empty: readonly boolean[]): StartEdge[][] {
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
}

interface StartEdge {
  target: number;
  /** The reference is the last element of its alternative (nothing is pushed after it). */
  tail: boolean;
}

/** Steps llama.cpp's left-recursion search may take before the grammar is refused. */
const LEFT_RECURSION_CHECK_BUDGET = 20_000_000;

/** A cycle in a graph of adjacency lists, as the list of its nodes, or undefined. Iterative. */
function findCycle(edges: readonly number[][]): number[] | undefined {
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
        path.pop();
      }
    }
  }
  return undefined;
}

/** Nodes of an acyclic graph, each before the nodes it points to. Iterative. */
function topologicalOrder(edges: readonly number[][]): number[] {
  const order: number[] = [];
  const state = new Uint8Array(edges.length);
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
        if (state[target] === 0) {
          state[target] = 1;
          path.push(target);
        }
      } else {
        order.push(r);
        path.pop();
      }
    }
  }
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

/** Whether a class can match a code point a token can produce (1..U+10FFFF; NUL never appears in token text). */
function classMatchesSomething(ranges: readonly [number, number][], negated: boolean): boolean {
  if (!negated) return ranges.some(([low, high]) => high >= 1 && low <= MAX_CODE_POINT);
  // Negated: something in 1..10FFFF must lie outside every range.
  const sorted = ranges.map(([low, high]) => [Math.max(1, low), Math.min(MAX_CODE_POINT, high)] as const);
  sorted.sort((a, b) => a[0] - b[0]);
  let covered = 0; // everything in 1..covered is excluded
  for (const [low, high] of sorted) {
    if (low > covered + 1) return true;
    covered = Math.max(covered, high);
  }
  return covered < MAX_CODE_POINT;
}

/**
 * llama.cpp's stack expansion (`llama_grammar_advance_stack`), counted with a budget: every distinct path
 * through possibly-empty rules to a terminal is a stack of its own, so nested optional rules can make
 * exponentially many (`a ::= b b`, `b ::= c c`, … each optional). Then a short greedy walk, choosing each step
 * the character that leaves the most stacks, catches grammars whose ambiguity multiplies stacks per character
 * (`r ::= "a" r "b" | "a" r "c" | "d"` doubles them with every `a`).
 */
class StackSimulator {
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
