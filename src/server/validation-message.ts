import { INTEGER_STRING, NUMERIC_STRING } from '../protocols/common/sampler-table.ts';

/** One Ajv error, as Fastify hands them over in `error.validation`. */
export interface AjvError {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  integer: 'an integer',
  boolean: 'a boolean (true or false)',
  array: 'a list',
  object: 'an object',
  null: 'null',
};
const PATTERN_WORDS: Record<string, string> = {
  [NUMERIC_STRING]: 'a number in a string',
  [INTEGER_STRING]: 'an integer in a string',
};

/** `/messages/0/content` → `messages[0].content` (the names decoders use too). */
function fieldOf(pointer: string): string {
  let field = '';
  for (const raw of pointer.split('/').slice(1)) {
    const segment = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    field += /^\d+$/.test(segment) ? `[${segment}]` : field === '' ? segment : `.${segment}`;
  }
  return field;
}

/** What one failed rule asks for, in words a user can act on. */
function wanted(error: AjvError): string | undefined {
  const p = error.params ?? {};
  switch (error.keyword) {
    case 'type':
      return String(p.type)
        .split(',')
        .map((type) => TYPE_WORDS[type] ?? type)
        .join(' or ');
    case 'pattern':
      return PATTERN_WORDS[String(p.pattern)] ?? `a string matching ${String(p.pattern)}`;
    case 'const':
      return JSON.stringify(p.allowedValue);
    case 'enum':
      return (p.allowedValues as unknown[]).map((value) => JSON.stringify(value)).join(' or ');
    default:
      return undefined;
  }
}

/** A limit that was passed, in words. */
function limit(error: AjvError): string | undefined {
  const n = error.params?.limit;
  switch (error.keyword) {
    case 'maxItems':
      return `at most ${n} items`;
    case 'minItems':
      return `at least ${n} item${n === 1 ? '' : 's'}`;
    case 'maxLength':
      return `at most ${n} characters`;
    case 'minLength':
      return `at least ${n} character${n === 1 ? '' : 's'}`;
    case 'maxProperties':
      return `at most ${n} entries`;
    case 'maximum':
    case 'exclusiveMaximum':
    case 'minimum':
    case 'exclusiveMinimum':
      return `must be ${error.params?.comparison} ${n}`;
    default:
      return undefined;
  }
}

/**
 * Ajv's errors for one body as one field and one message, e.g. `prompt: expected a string`. The deepest path that
 * failed names the field (a bad item in a list names the item). Where a union failed, a limit broken by the branch
 * of the right type wins; otherwise every accepted type is listed.
 */
export function describeValidation(errors: readonly AjvError[]): { field: string; message: string } {
  const first = errors[0] ?? {};
  if (first.keyword === 'required') {
    const parent = fieldOf(first.instancePath ?? '');
    const name = String(first.params?.missingProperty ?? '');
    return { field: parent ? `${parent}.${name}` : name, message: 'is required' };
  }
  const depth = (error: AjvError) => (error.instancePath ?? '').split('/').length;
  const deepest = Math.max(...errors.map(depth));
  const here = errors.filter((error) => depth(error) === deepest);
  const path = here[0]?.instancePath ?? '';
  const field = fieldOf(path) || 'body';
  const broken = here.map(limit).find((text) => text !== undefined);
  if (broken) return { field, message: broken };
  let kinds = [...new Set(here.map(wanted).filter((text): text is string => text !== undefined))];
  // A number-or-string union is a Kobold numeric field whose string branch has a numeric pattern.
  const numeric = kinds.find((kind) => kind === 'a number' || kind === 'an integer');
  if (numeric) {
    const inString = numeric === 'a number' ? PATTERN_WORDS[NUMERIC_STRING] : PATTERN_WORDS[INTEGER_STRING];
    kinds = [...new Set(kinds.map((kind) => (kind === 'a string' ? (inString as string) : kind)))];
  }
  if (kinds.length > 0) {
    const list = kinds.length > 1 ? `${kinds.slice(0, -1).join(', ')} or ${kinds.at(-1)}` : kinds[0];
    return { field, message: `expected ${list}` };
  }
  return { field, message: here[0]?.message ?? 'is invalid' };
}
