/**
 * The module specifiers a TypeScript file imports: `import … from 's'`, `import 's'`, `import type … from 's'`,
 * `export … from 's'` and `import('s')` with a literal. A small scanner rather than the compiler: TypeScript 7
 * has no JavaScript API, and a regex over raw text would also match imports inside strings, template literals
 * and comments (tests and docs quote code). Type-only imports count: a layer that names another layer's types
 * depends on it as much as one that calls it. JSX text is scanned as code: an apostrophe in it can garble the rest
 * of its line, and no more, since imports come first and a string never runs past a line's end.
 */
export interface ImportSpecifier {
  specifier: string;
  line: number;
}

// After these a `/` starts a regular expression, not a division.
const BEFORE_REGEX = new Set([
  '(',
  ',',
  '=',
  ':',
  '[',
  '!',
  '&',
  '|',
  '?',
  '{',
  '}',
  ';',
  '+',
  '-',
  '*',
  '%',
  '<',
  '>',
  '~',
  '^',
]);
const KEYWORDS_BEFORE_REGEX = new Set([
  'return',
  'typeof',
  'instanceof',
  'in',
  'of',
  'new',
  'delete',
  'void',
  'throw',
  'case',
  'do',
  'else',
  'yield',
  'await',
]);
// What may stand between `import` and `from`: bindings, braces, `* as x`, `type`.
const CLAUSE_TOKEN = /^(?:[\w$]+|[{},*])$/;

type Token = { kind: 'word' | 'string' | 'punct'; value: string; start: number };

export function importSpecifiers(source: string): ImportSpecifier[] {
  const tokens = tokenize(source);
  const found: ImportSpecifier[] = [];
  const lineOf = (offset: number) => {
    let line = 1;
    for (let i = 0; i < offset; i++) if (source.charCodeAt(i) === 10) line++;
    return line;
  };
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token.kind !== 'word' || (token.value !== 'import' && token.value !== 'export')) continue;
    // `import.meta`, `x.import`, `{ import: 1 }` are not imports.
    if (tokens[i - 1]?.value === '.' || tokens[i + 1]?.value === '.' || tokens[i + 1]?.value === ':') continue;
    const next = tokens[i + 1];
    if (!next) break;
    if (token.value === 'import' && next.value === '(') {
      const literal = tokens[i + 2];
      if (literal?.kind === 'string' && tokens[i + 3]?.value === ')') {
        found.push({ specifier: literal.value, line: lineOf(literal.start) });
      }
      continue;
    }
    if (token.value === 'import' && next.kind === 'string') {
      found.push({ specifier: next.value, line: lineOf(next.start) });
      continue;
    }
    // `export const …`, `export function …`, `export default …` name no module; only `export {…}`, `export *`
    // and `export type {…}` can be followed by `from`.
    if (token.value === 'export') {
      const first = next.value === 'type' ? tokens[i + 2]?.value : next.value;
      if (first !== '{' && first !== '*') continue;
    }
    // The clause (bindings, braces, `* as x`, `type`) runs up to the specifier, and its last word is `from`.
    let j = i + 1;
    while (j < tokens.length && tokens[j]!.kind !== 'string' && CLAUSE_TOKEN.test(tokens[j]!.value)) j++;
    const literal = tokens[j];
    if (literal?.kind === 'string' && j > i + 1 && tokens[j - 1]!.value === 'from') {
      found.push({ specifier: literal.value, line: lineOf(literal.start) });
    }
  }
  return found;
}

/** Words, string literals and punctuation; comments, template literals and regular expressions are skipped. */
function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  // One entry per open `${`: the brace depth at which that substitution ends and its template resumes.
  const templates: number[] = [];
  let depth = 0;
  let i = 0;
  const regexAllowed = () => {
    const last = tokens[tokens.length - 1];
    if (!last) return true;
    if (last.kind === 'punct') return BEFORE_REGEX.has(last.value);
    return last.kind === 'word' && KEYWORDS_BEFORE_REGEX.has(last.value);
  };
  const skipTemplate = () => {
    // From just after a backtick or a substitution's closing brace to the closing backtick or the next `${`.
    while (i < source.length) {
      const c = source[i]!;
      if (c === '\\') i += 2;
      else if (c === '`') {
        i++;
        tokens.push({ kind: 'punct', value: '`', start: i - 1 });
        return;
      } else if (c === '$' && source[i + 1] === '{') {
        i += 2;
        templates.push(depth);
        depth++;
        tokens.push({ kind: 'punct', value: '{', start: i - 1 });
        return;
      } else i++;
    }
  };
  while (i < source.length) {
    const c = source[i]!;
    if (c === '/' && source[i + 1] === '/') {
      while (i < source.length && source[i] !== '\n') i++;
    } else if (c === '/' && source[i + 1] === '*') {
      const end = source.indexOf('*/', i + 2);
      i = end < 0 ? source.length : end + 2;
    } else if (c === '"' || c === "'") {
      const start = i;
      let value = '';
      i++;
      while (i < source.length && source[i] !== c && source[i] !== '\n') {
        if (source[i] === '\\') i++;
        else value += source[i];
        i++;
      }
      i++;
      tokens.push({ kind: 'string', value, start });
    } else if (c === '`') {
      i++;
      skipTemplate();
    } else if (c === '/' && regexAllowed()) {
      let inClass = false;
      i++;
      while (i < source.length && source[i] !== '\n') {
        const r = source[i]!;
        if (r === '\\') i++;
        else if (r === '[') inClass = true;
        else if (r === ']') inClass = false;
        else if (r === '/' && !inClass) break;
        i++;
      }
      i++;
      while (i < source.length && /[a-z]/.test(source[i]!)) i++;
      tokens.push({ kind: 'punct', value: ')', start: i });
    } else if (/[\w$]/.test(c)) {
      const start = i;
      while (i < source.length && /[\w$]/.test(source[i]!)) i++;
      tokens.push({ kind: 'word', value: source.slice(start, i), start });
    } else if (/\s/.test(c)) {
      i++;
    } else {
      if (c === '{') depth++;
      if (c === '}') {
        depth--;
        if (templates.length > 0 && templates[templates.length - 1] === depth) {
          templates.pop();
          i++;
          tokens.push({ kind: 'punct', value: '}', start: i - 1 });
          skipTemplate();
          continue;
        }
      }
      tokens.push({ kind: 'punct', value: c, start: i });
      i++;
    }
  }
  return tokens;
}
