import { checkGbnf } from '../../core/gbnf-check.ts';
import { KindlingError } from '../../core/kindling-error.ts';
import { SAMPLING_LIMITS } from '../../core/sampling-limits.ts';
import { DEFAULT_SAMPLING, type SamplingParams } from '../../core/sampling-params.ts';

/**
 * Every sampler field any protocol sends, with its aliases in precedence order (the first one present
 * wins; KoboldCpp instead takes the max of `rep_pen` aliases, which surprises users). Protocols rename
 * their own fields onto these Kobold-style names and call `decodeSampling` once.
 */
type Fields = Record<string, unknown>;

/**
 * A decimal number in a string, as KoboldCpp's own `tryparsefloat`/`tryparseint` accept it: Kobold schemas allow
 * it for numeric fields (docs/kobold-compatibility.md, "Coercions we keep").
 */
export const NUMERIC_STRING = '^\\s*[-+]?(\\d+\\.?\\d*|\\.\\d+)([eE][-+]?\\d+)?\\s*$';
/** The same for integer fields (`tryparseint` takes no fraction). */
export const INTEGER_STRING = '^\\s*[-+]?\\d+\\s*$';
const NUMERIC = new RegExp(NUMERIC_STRING);

/** The first of `names` present (not null) as a number; a numeric string is read as its number. */
export const num = (fields: Fields, names: readonly string[]): number | undefined => {
  for (const name of names) {
    const value = fields[name];
    if (value === undefined || value === null) continue;
    const n = typeof value === 'string' && NUMERIC.test(value) ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isFinite(n))
      throw KindlingError.badInput(name, `expected a number, got ${JSON.stringify(value)}`);
    return n;
  }
  return undefined;
};

/**
 * A window of recent tokens. -1 is the whole context (llama.cpp's and Ollama's meaning); `zero` says what 0 is
 * (KoboldCpp: one token for the repetition penalty, the whole context for DRY). Any other negative is a 400.
 * The whole context is `Infinity` here: the scheduler clamps every window to the model's context.
 */
function windowOf(fields: Fields, names: readonly string[], fallback: number, zero: number): number {
  const value = num(fields, names);
  if (value === undefined) return fallback;
  const n = Math.round(value);
  if (n === -1) return Number.POSITIVE_INFINITY;
  if (n < 0) {
    const name = names.find((candidate) => fields[candidate] !== undefined && fields[candidate] !== null);
    throw KindlingError.badInput(
      name ?? (names[0] as string),
      `${value} is not a window: send a number of tokens (at most the context is used), or -1 for the whole context`,
    );
  }
  return n === 0 ? zero : n;
}

/** Samplers llama.cpp does not offer through node-llama-cpp, with the value that means "off". */
export const IGNORED_SAMPLERS: ReadonlyArray<readonly [name: string, neutral: number | undefined]> = [
  ['top_a', 0],
  ['tfs', 1],
  ['typical', 1],
  ['mirostat', 0],
  ['mirostat_tau', undefined],
  ['mirostat_eta', undefined],
  ['dynatemp_range', 0],
  ['dynatemp_exponent', undefined],
  ['smoothing_factor', 0],
  ['smoothing_curve', undefined],
  ['nsigma', 0],
  ['rep_pen_slope', undefined],
  ['adaptive_target', undefined],
  ['adaptive_decay', undefined],
  ['sampler_order', undefined],
];

export function decodeSampling(fields: Fields): SamplingParams {
  const d = DEFAULT_SAMPLING;
  const seed = num(fields, ['sampler_seed', 'seed']);
  const dryMultiplier = num(fields, ['dry_multiplier']) ?? 0;
  const xtcProbability = num(fields, ['xtc_probability']) ?? 0;
  const ignored = IGNORED_SAMPLERS.filter(([name, neutral]) => {
    const value = fields[name];
    return (
      value !== undefined && value !== null && (neutral === undefined ? name === 'mirostat' : Number(value) !== neutral)
    );
  }).map(([name]) => name);
  const params: SamplingParams = {
    temperature: num(fields, ['temperature']) ?? d.temperature,
    topK: Math.round(num(fields, ['top_k']) ?? d.topK),
    topP: num(fields, ['top_p']) ?? d.topP,
    minP: num(fields, ['min_p']) ?? d.minP,
    repeatPenalty: num(fields, ['rep_pen', 'repetition_penalty', 'repeat_penalty']) ?? d.repeatPenalty,
    repeatPenaltyRange: windowOf(fields, ['rep_pen_range', 'repeat_last_n'], d.repeatPenaltyRange, 1),
    presencePenalty: num(fields, ['presence_penalty']) ?? d.presencePenalty,
    frequencyPenalty: num(fields, ['frequency_penalty']) ?? d.frequencyPenalty,
    logitBias: decodeLogitBias(fields.logit_bias),
    bannedTokenIds: decodeTokenBans(fields.custom_token_bans),
    bannedStrings: bannedStrings(fields),
    ignored,
  };
  if (seed !== undefined && seed > 0 && seed !== 0xffffffff) params.seed = Math.round(seed);
  if (dryMultiplier > 0) {
    params.dry = {
      multiplier: dryMultiplier,
      base: num(fields, ['dry_base']) ?? 1.75,
      allowedLength: allowedLength(fields),
      penaltyLastN: windowOf(fields, ['dry_penalty_last_n'], 320, Number.POSITIVE_INFINITY),
      sequenceBreakers: dryBreakers(fields.dry_sequence_breakers),
    };
  }
  if (xtcProbability > 0)
    params.xtc = { probability: Math.min(1, xtcProbability), threshold: num(fields, ['xtc_threshold']) ?? 0.1 };
  const grammar = fields.grammar;
  if (typeof grammar === 'string' && grammar.trim() !== '') params.grammar = checkedGrammar(grammar);
  return params;
}

/** A grammar llama.cpp could choke on is refused here, before the request is submitted (see gbnf-check.ts). */
function checkedGrammar(grammar: string): string {
  checkGbnf(grammar, 'grammar');
  return grammar;
}

const L = SAMPLING_LIMITS;

/** `banned_tokens` (alias `banned_strings`): a list of strings, empty ones skipped. */
function bannedStrings(fields: Fields): string[] {
  for (const name of ['banned_tokens', 'banned_strings']) {
    const value = fields[name];
    if (value === undefined || value === null) continue;
    if (!Array.isArray(value)) throw KindlingError.badInput(name, 'expected a list of strings');
    if (value.length > L.bannedStrings)
      throw KindlingError.badInput(name, `${value.length} entries; at most ${L.bannedStrings}`);
    for (const [i, item] of value.entries()) {
      if (typeof item !== 'string') throw KindlingError.badInput(`${name}[${i}]`, 'expected a string');
      if (item.length > L.bannedStringLength)
        throw KindlingError.badInput(`${name}[${i}]`, `${item.length} characters; at most ${L.bannedStringLength}`);
    }
    return value.filter((item: string) => item.length > 0);
  }
  return [];
}

/** Positive integers only; 0 is taken as 1, as before (llama.cpp needs at least one token). */
function allowedLength(fields: Fields): number {
  const value = num(fields, ['dry_allowed_length']);
  if (value === undefined) return 2;
  if (value < 0)
    throw KindlingError.badInput('dry_allowed_length', `${value} is negative: send a number of tokens (0 or more)`);
  return Math.max(1, Math.round(value));
}

/** A token id as a JSON key or list item: decimal digits only (no sign, no exponent, no blank). */
const TOKEN_ID = /^\d+$/;

/**
 * `{"<token id>": bias}`; -100 or lower bans the token, as in KoboldCpp and OpenAI; above 100 is 100. Ids past the
 * vocabulary are the scheduler's 400 (it knows the model).
 */
function decodeLogitBias(raw: unknown): Map<number, number> {
  const bias = new Map<number, number>();
  if (raw === undefined || raw === null) return bias;
  if (typeof raw !== 'object' || Array.isArray(raw))
    throw KindlingError.badInput('logit_bias', 'expected an object mapping token ids to numbers');
  const entries = Object.entries(raw);
  if (entries.length > L.logitBias)
    throw KindlingError.badInput('logit_bias', `${entries.length} entries; at most ${L.logitBias}`);
  for (const [key, value] of entries) {
    if (!TOKEN_ID.test(key) || !Number.isSafeInteger(Number(key)))
      throw KindlingError.badInput('logit_bias', `"${key}" is not a token id (a non-negative integer)`);
    if (typeof value !== 'number' || !Number.isFinite(value))
      throw KindlingError.badInput(
        'logit_bias',
        `bias for token ${key} must be a number, got ${JSON.stringify(value)}`,
      );
    if (value !== 0) bias.set(Number(key), value <= -100 ? Number.NEGATIVE_INFINITY : Math.min(100, value));
  }
  return bias;
}

/** KoboldCpp's `custom_token_bans`: "id,id,…" (spaces and empty items allowed). */
function decodeTokenBans(raw: unknown): number[] {
  if (raw === undefined || raw === null || raw === '') return [];
  if (typeof raw !== 'string')
    throw KindlingError.badInput('custom_token_bans', 'expected comma-separated token ids in a string');
  const parts = raw
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
  if (parts.length > L.logitBias)
    throw KindlingError.badInput('custom_token_bans', `${parts.length} ids; at most ${L.logitBias}`);
  return parts.map((part) => {
    if (!TOKEN_ID.test(part) || !Number.isSafeInteger(Number(part)))
      throw KindlingError.badInput('custom_token_bans', `"${part}" is not a token id (a non-negative integer)`);
    return Number(part);
  });
}

const DEFAULT_BREAKERS = ['\n', ':', '"', '*'];

/** KoboldCpp accepts the breakers as a list or as a JSON-encoded list in a string; each is cut to 40 characters. */
function dryBreakers(value: unknown): string[] {
  if (value === undefined || value === null) return DEFAULT_BREAKERS;
  let list = value;
  if (typeof value === 'string') {
    try {
      list = JSON.parse(value);
    } catch {
      throw KindlingError.badInput('dry_sequence_breakers', 'expected a list of strings, or that list JSON-encoded');
    }
  }
  if (!Array.isArray(list) || !list.every((item) => typeof item === 'string'))
    throw KindlingError.badInput('dry_sequence_breakers', 'expected a list of strings, or that list JSON-encoded');
  if (list.length > L.drySequenceBreakers)
    throw KindlingError.badInput('dry_sequence_breakers', `${list.length} breakers; at most ${L.drySequenceBreakers}`);
  return list.map((item: string) => Array.from(item).slice(0, L.drySequenceBreakerLength).join(''));
}
