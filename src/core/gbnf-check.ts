import { checkLeftRecursion } from './gbnf-left-recursion.ts';
import { StackSimulator } from './gbnf-parse-stacks.ts';
import { type Element, GbnfParser } from './gbnf-parser.ts';
import { GrammarError } from './gbnf-scanner.ts';
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
 * and builds the same rules llama.cpp would build, within the limits in gbnf-parser.ts, checked before anything is
 * built. Every step is linear in the text or bounded by a limit, so it always ends quickly. A rejection is a
 * `KindlingError` 400 naming the rule and what is wrong. The pieces: gbnf-scanner.ts reads the text,
 * gbnf-parser.ts builds the rules, gbnf-left-recursion.ts and gbnf-parse-stacks.ts check what was built.
 */

export {
  GBNF_MAX_CHARS,
  GBNF_MAX_ELEMENTS,
  GBNF_MAX_NESTING,
  GBNF_MAX_REPEAT,
  GBNF_MAX_RULES,
  GBNF_MAX_STACKS,
} from './gbnf-parser.ts';

/** What the check learned, for tests and for callers that want the size. */
export interface GbnfSummary {
  rules: number;
  elements: number;
  initialStacks: number;
}

const accepted = new Map<string, GbnfSummary>();

/** Throws a 400 `KindlingError` for `field` if llama.cpp cannot safely use `text` as a grammar. */
export function checkGbnf(text: string, field = 'grammar'): GbnfSummary {
  const known = accepted.get(text);
  if (known) return known;
  try {
    const summary = validate(new GbnfParser(text).parse());
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

/** The checks on the rules llama.cpp would build, once the text has parsed. */
function validate(grammar: GbnfParser): GbnfSummary {
  if (grammar.rules.length === 0) throw new GrammarError('the grammar defines no rules');
  for (let id = 0; id < grammar.symbols.size; id++) {
    if (grammar.rules[id] === undefined) {
      const use = grammar.firstUse.get(id);
      const name = grammar.names[id] ?? String(id);
      const where = use ? ` (used in rule ${use.rule} at ${grammar.where(use.at)})` : '';
      throw new GrammarError(`rule ${name} is used but never defined${where}`);
    }
  }
  const root = grammar.symbols.get('root');
  if (root === undefined) throw new GrammarError('the grammar has no root rule (write root ::= …)');
  const rules = grammar.rules as Element[][];
  checkLeftRecursion(rules, grammar.names, grammar.generated);
  const initialStacks = new StackSimulator(rules).check(root, (rule) => grammar.names[rule] ?? String(rule));
  return { rules: rules.length, elements: grammar.elements, initialStacks };
}
