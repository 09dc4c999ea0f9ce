/**
 * Reading GBNF text the way llama.cpp's `llama_grammar_parser` reads it: whitespace and comments, names, integers,
 * and characters with their escapes. Kept apart from the rule building in gbnf-parser.ts, which extends it, so
 * each half can be compared with its llama.cpp counterpart on its own.
 */

/** A grammar llama.cpp would refuse or could not safely use; `checkGbnf` turns it into a 400. */
export class GrammarError extends Error {}

export const MAX_CODE_POINT = 0x10ffff;
const HEX_DIGITS = /^[0-9a-fA-F]+$/;

export class GbnfScanner {
  protected pos = 0;
  protected currentRule = '';

  constructor(protected readonly src: string) {}

  protected fail(message: string, at = this.pos): never {
    const rule = this.currentRule ? `rule ${this.currentRule}: ` : '';
    throw new GrammarError(`${rule}${message} at ${this.where(at)}`);
  }

  where(at: number): string {
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

  protected ch(at: number): string {
    return this.src[at] ?? '';
  }

  protected space(from: number, newlineOk: boolean): number {
    let p = from;
    for (;;) {
      const c = this.ch(p);
      if (c === ' ' || c === '\t' || (newlineOk && (c === '\r' || c === '\n'))) p++;
      else if (c === '#') {
        while (p < this.src.length && this.ch(p) !== '\r' && this.ch(p) !== '\n') p++;
      } else return p;
    }
  }

  protected static isWordChar(c: string): boolean {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c === '-';
  }

  protected static isDigit(c: string): boolean {
    return c >= '0' && c <= '9';
  }

  protected name(from: number): number {
    let p = from;
    while (GbnfScanner.isWordChar(this.ch(p))) p++;
    if (p === from) this.fail('expecting a rule name ([a-zA-Z0-9-]+)', from);
    return p;
  }

  /** Digits as a number; past 15 digits (beyond every limit) the value is capped, never infinite. */
  protected int(from: number): [value: number, end: number] {
    let p = from;
    while (GbnfScanner.isDigit(this.ch(p))) p++;
    if (p === from) this.fail('expecting an integer', from);
    const digits = this.src.slice(from, p).replace(/^0+(?=\d)/, '');
    return [digits.length > 15 ? 1e15 : Number(digits), p];
  }

  private hex(from: number, size: number): [number, number] {
    const digits = this.src.slice(from, from + size);
    if (digits.length !== size || !HEX_DIGITS.test(digits))
      this.fail(`expecting ${size} hex digits after \\${size === 2 ? 'x' : size === 4 ? 'u' : 'U'}`, from);
    return [Number.parseInt(digits, 16), from + size];
  }

  /** One character of a literal or class: an escape or one code point. */
  protected char(from: number): [number, number] {
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
}
