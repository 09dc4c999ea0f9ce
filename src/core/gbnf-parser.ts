import { GbnfScanner, GrammarError, MAX_CODE_POINT } from './gbnf-scanner.ts';

/**
 * The rule building of llama.cpp's `llama_grammar_parser` (src/llama-grammar.cpp), mirrored token for token, so the
 * checks after it see the very rules llama.cpp would build. Each limit below is checked before the rules it bounds
 * are built, so an oversized grammar is refused without being expanded.
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

export const END = 0;
export const ALT = 1;
export const RULE_REF = 2;
export const CHAR = 3;
export const CHAR_NOT = 4;
export const CHAR_RNG_UPPER = 5;
export const CHAR_ALT = 6;
export const CHAR_ANY = 7;
export const TOKEN = 8;
export const TOKEN_NOT = 9;

/** An element as llama.cpp stores it: `value * 16 + type` (values are at most 32 bits, so this stays exact). */
export type Element = number;
export const el = (type: number, value: number): Element => value * 16 + type;
export const typeOf = (e: Element): number => e % 16;
export const valueOfElement = (e: Element): number => Math.floor(e / 16);

export class GbnfParser extends GbnfScanner {
  readonly symbols = new Map<string, number>();
  readonly names: string[] = [];
  readonly rules: (Element[] | undefined)[] = [];
  /** Where each symbol was first used, for "used but never defined" messages. */
  readonly firstUse = new Map<number, { rule: string; at: number }>();
  elements = 0;
  /** Ids of the rules llama.cpp makes for groups and repeats. */
  readonly generated = new Set<number>();
  private depth = 0;

  parse(): this {
    if (this.src.length > GBNF_MAX_CHARS)
      throw new GrammarError(`the grammar is ${this.src.length} characters long; the limit is ${GBNF_MAX_CHARS}`);
    const nul = this.src.indexOf('\u0000');
    if (nul >= 0)
      throw new GrammarError(
        `the grammar text contains a NUL character (U+0000) at ${this.where(nul)}: llama.cpp would stop reading there`,
      );
    this.pos = this.space(0, true);
    while (this.pos < this.src.length) this.parseRule();
    return this;
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
      } else if (GbnfParser.isWordChar(c)) {
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
        if (!GbnfParser.isDigit(this.ch(p))) this.fail('expecting an integer after {', p);
        const [min, minEnd] = this.int(p);
        p = this.space(minEnd, nested);
        let max = Number.POSITIVE_INFINITY;
        if (this.ch(p) === '}') {
          max = min;
          p++;
        } else if (this.ch(p) === ',') {
          p = this.space(p + 1, nested);
          if (GbnfParser.isDigit(this.ch(p))) {
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
