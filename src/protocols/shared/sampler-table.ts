import { checkGbnf } from '../../core/gbnf-check.ts';
import { KindlingError } from '../../core/kindling-error.ts';
import { DEFAULT_SAMPLING, type SamplingParams } from '../../core/sampling-params.ts';

/**
 * Every sampler field any protocol sends, with its aliases in precedence order (the first one present
 * wins; KoboldCpp instead takes the max of `rep_pen` aliases, which surprises users). Protocols rename
 * their own fields onto these Kobold-style names and call `decodeSampling` once.
 */
type Fields = Record<string, unknown>;

const num = (fields: Fields, names: readonly string[]): number | undefined => {
  for (const name of names) {
    const value = fields[name];
    if (value === undefined || value === null) continue;
    const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isFinite(n))
      throw KindlingError.badInput(name, `expected a number, got ${JSON.stringify(value)}`);
    return n;
  }
  return undefined;
};

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
    repeatPenaltyRange: Math.max(
      1,
      Math.round(num(fields, ['rep_pen_range', 'repeat_last_n']) ?? d.repeatPenaltyRange),
    ),
    presencePenalty: num(fields, ['presence_penalty']) ?? d.presencePenalty,
    frequencyPenalty: num(fields, ['frequency_penalty']) ?? d.frequencyPenalty,
    logitBias: decodeLogitBias(fields),
    bannedStrings: stringList(fields, ['banned_tokens', 'banned_strings']),
    ignored,
  };
  if (seed !== undefined && seed > 0 && seed !== 0xffffffff) params.seed = Math.round(seed);
  if (dryMultiplier > 0) {
    params.dry = {
      multiplier: dryMultiplier,
      base: num(fields, ['dry_base']) ?? 1.75,
      allowedLength: Math.max(1, Math.round(num(fields, ['dry_allowed_length']) ?? 2)),
      penaltyLastN: Math.round(num(fields, ['dry_penalty_last_n']) ?? 320),
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

function stringList(fields: Fields, names: readonly string[]): string[] {
  for (const name of names) {
    const value = fields[name];
    if (value === undefined || value === null) continue;
    if (typeof value === 'string') return value ? [value] : [];
    if (!Array.isArray(value)) throw KindlingError.badInput(name, 'expected a list of strings');
    return value.filter((item): item is string => typeof item === 'string' && item.length > 0);
  }
  return [];
}

/** `{"<token id>": bias}`; -100 or lower bans the token, as in KoboldCpp and OpenAI. */
function decodeLogitBias(fields: Fields): Map<number, number> {
  const bias = new Map<number, number>();
  const raw = fields.logit_bias;
  if (raw !== undefined && raw !== null) {
    if (typeof raw !== 'object' || Array.isArray(raw))
      throw KindlingError.badInput('logit_bias', 'expected an object mapping token ids to numbers');
    for (const [key, value] of Object.entries(raw)) {
      const id = Number(key);
      const b = Number(value);
      if (!Number.isInteger(id) || id < 0) throw KindlingError.badInput('logit_bias', `"${key}" is not a token id`);
      if (!Number.isFinite(b)) throw KindlingError.badInput('logit_bias', `bias for token ${key} is not a number`);
      if (b !== 0) bias.set(id, b <= -100 ? Number.NEGATIVE_INFINITY : Math.min(100, b));
    }
  }
  const bans = fields.custom_token_bans;
  if (typeof bans === 'string') {
    for (const part of bans.split(',')) {
      const id = Number(part.trim());
      if (part.trim() !== '' && Number.isInteger(id) && id >= 0) bias.set(id, Number.NEGATIVE_INFINITY);
    }
  }
  return bias;
}

/** KoboldCpp accepts the breakers as a list or as a JSON-encoded list in a string. */
function dryBreakers(value: unknown): string[] {
  let list = value;
  if (typeof value === 'string') {
    try {
      list = JSON.parse(value);
    } catch {
      return [];
    }
  }
  return Array.isArray(list)
    ? list.filter((item): item is string => typeof item === 'string').slice(0, 128)
    : ['\n', ':', '"', '*'];
}
