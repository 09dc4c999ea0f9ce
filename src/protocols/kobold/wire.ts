import { type Static, type TSchema, Type } from 'typebox';
import {
  GBNF_MAX_CHARS,
  GBNF_MAX_ELEMENTS,
  GBNF_MAX_NESTING,
  GBNF_MAX_REPEAT,
  GBNF_MAX_RULES,
  GBNF_MAX_STACKS,
} from '../../core/gbnf-check.ts';
import { SAMPLING_LIMITS } from '../../core/sampling-limits.ts';
import { INTEGER_STRING, NUMERIC_STRING } from '../common/sampler-table.ts';
import { StreamIntervalField } from '../common/stream-interval.ts';
import { STREAM_KEY_RULE } from '../common/stream-key.ts';

const L = SAMPLING_LIMITS;
/**
 * Kobold numbers: a JSON number, the same number in a string (KoboldCpp parses them with `tryparsefloat`), or
 * null for "not sent". Nothing else: `"hot"`, `true` or `{}` is a 400 naming the field.
 */
const numeric = (schema: TSchema, pattern: string, description: string) =>
  Type.Optional(Type.Union([schema, Type.String({ pattern }), Type.Null()], { description }));
const num = (description: string) => numeric(Type.Number(), NUMERIC_STRING, description);
const int = (description: string) => numeric(Type.Integer(), INTEGER_STRING, description);
const bool = (description: string) => Type.Optional(Type.Boolean({ description }));
const text = (description: string) => Type.Optional(Type.String({ description }));
const stopString = Type.String({ maxLength: L.stopStringLength });
const bannedString = Type.String({ maxLength: L.bannedStringLength });
const window = (what: string, zero: string) =>
  int(
    `${what} A number of tokens: larger than the context is the context (as KoboldCpp clamps); -1 is the whole context; ${zero}; any other negative is a 400.`,
  );

/**
 * `POST /api/v1/generate` and `/api/extra/generate/stream` body, as KoboldCpp and KoboldAI Lite send it.
 * Unknown fields are accepted and ignored: a request never fails because a client sent a field we don't use.
 */
export const KoboldGenerateBody = Type.Object(
  {
    prompt: text('Text to continue. Trimmed from the front (token-exact) to fit max_context_length - max_length.'),
    memory: text('Text kept at the very start of the context however long the prompt is.'),
    max_length: int('Tokens to generate. Capped so at least 16 prompt tokens fit the context.'),
    max_context_length: int('Context window for this request; at most the server context.'),
    temperature: num('0 or below: greedy.'),
    top_k: int('0 or below: disabled. Larger than the vocabulary is the vocabulary.'),
    top_p: num('1: disabled.'),
    min_p: num('0: disabled.'),
    rep_pen: num('Repetition penalty; aliases repetition_penalty, repeat_penalty (first present wins). 1: off.'),
    rep_pen_range: window(
      'Recent tokens the repetition, presence and frequency penalties look at (default 320).',
      '0 is 1 (KoboldCpp)',
    ),
    rep_pen_slope: num('Accepted, ignored.'),
    presence_penalty: num('Presence penalty.'),
    frequency_penalty: num('Frequency penalty.'),
    top_a: num('Accepted, ignored (llama.cpp has no top-a).'),
    tfs: num('Accepted, ignored.'),
    typical: num('Accepted, ignored.'),
    mirostat: num('Accepted, ignored.'),
    mirostat_tau: num('Accepted, ignored.'),
    mirostat_eta: num('Accepted, ignored.'),
    dynatemp_range: num('Accepted, ignored.'),
    dynatemp_exponent: num('Accepted, ignored.'),
    smoothing_factor: num('Accepted, ignored.'),
    sampler_order: Type.Optional(
      Type.Array(Type.Integer(), { maxItems: 64, description: 'Accepted, ignored: llama.cpp applies its own order.' }),
    ),
    sampler_seed: num('Seed; 0 or below (or absent) picks a random seed, reported in /api/extra/perf last_seed.'),
    stop_sequence: Type.Optional(
      Type.Union([stopString, Type.Array(Type.Union([stopString, Type.Null()]), { maxItems: L.stopStrings })], {
        description: `Strings that end generation (null entries are skipped). A single string is one stop string. At most ${L.stopStrings}, each at most ${L.stopStringLength} characters.`,
      }),
    ),
    trim_stop: bool('Remove the stop string from the output (default true).'),
    ban_eos_token: bool('EOS/EOT can never be generated.'),
    use_default_badwordsids: bool('Alias of ban_eos_token, used only when ban_eos_token is absent.'),
    bypass_eos: bool('EOS may be generated but does not end the generation.'),
    render_special: bool('Render special tokens (EOS, control tokens) as text.'),
    grammar: text(
      `GBNF grammar the output must follow (llama.cpp syntax), or a JSON schema as a string (converted, as in KoboldCpp). Checked before generation: a syntax error, an undefined rule, no root rule, left recursion, a repeat {m,n} with m > n or past ${GBNF_MAX_REPEAT}, nesting past ${GBNF_MAX_NESTING} parentheses, more than ${GBNF_MAX_CHARS} characters, an expansion past ${GBNF_MAX_RULES} rules or ${GBNF_MAX_ELEMENTS} elements, a terminal no token can produce ([\\x00], [], reversed ranges) or a grammar so ambiguous that llama.cpp would track more than ${GBNF_MAX_STACKS} parse stacks is a 400 naming the rule.`,
    ),
    grammar_retain_state: bool('Accepted, ignored.'),
    stream_interval_ms: StreamIntervalField,
    genkey: text(
      `Identifies the generation for /check, /abort, /last_logprobs and stream resume: ${STREAM_KEY_RULE} (trimmed).`,
    ),
    dry_multiplier: num('DRY strength; 0 disables DRY.'),
    dry_base: num('DRY base.'),
    dry_allowed_length: int(
      'DRY allowed length (default 2): repeats this long are not penalized. 0 is 1; negative is a 400; larger than the context is the context.',
    ),
    dry_penalty_last_n: window(
      'Recent tokens DRY scans for repeats (default 320).',
      '0 is the whole context too (KoboldCpp; in llama.cpp 0 disables DRY: use dry_multiplier 0 for that)',
    ),
    dry_sequence_breakers: Type.Optional(
      Type.Union([Type.Array(Type.String(), { maxItems: L.drySequenceBreakers }), Type.String()], {
        description: `Strings that end a repeat for DRY: a list, or that list JSON-encoded in a string (as SillyTavern sends it). At most ${L.drySequenceBreakers}; each is cut to ${L.drySequenceBreakerLength} characters (as KoboldCpp and llama.cpp do). Default ["\\n", ":", "\\"", "*"].`,
      }),
    ),
    xtc_threshold: num('XTC threshold.'),
    xtc_probability: num('XTC probability; 0 disables XTC.'),
    logit_bias: Type.Optional(
      Type.Record(Type.String(), Type.Number(), {
        maxProperties: L.logitBias,
        description: `{"token id": bias}: ids are integers 0..vocabulary-1 (another id is a 400 naming it and the range); -100 or lower bans, above 100 is 100. At most ${L.logitBias} entries.`,
      }),
    ),
    custom_token_bans: text(
      `Comma-separated token ids to ban, each 0..vocabulary-1 (another is a 400). At most ${L.logitBias} ids.`,
    ),
    banned_tokens: Type.Optional(
      Type.Array(bannedString, {
        maxItems: L.bannedStrings,
        description: `Strings whose tokens are never generated (alias banned_strings). At most ${L.bannedStrings}, each at most ${L.bannedStringLength} characters.`,
      }),
    ),
    banned_strings: Type.Optional(
      Type.Array(bannedString, {
        maxItems: L.bannedStrings,
        description: 'Alias of banned_tokens (used when it is absent).',
      }),
    ),
    logprobs: bool('Include the top-5 logprobs of each token in the response (5 is the most, as in KoboldCpp).'),
    quiet: bool('Accepted, ignored.'),
    images: Type.Optional(Type.Array(Type.String(), { description: 'Accepted, ignored (no vision model).' })),
  },
  { additionalProperties: true },
);
export type KoboldGenerateBody = Static<typeof KoboldGenerateBody>;

export const GenkeyBody = Type.Object(
  { genkey: Type.Optional(Type.String({ description: `The generation's genkey: ${STREAM_KEY_RULE} (trimmed).` })) },
  { additionalProperties: true },
);

export const TokenCountBody = Type.Object(
  {
    prompt: Type.String({ description: 'Text to tokenize (a string: another type is a 400).' }),
    special: Type.Optional(Type.Boolean({ description: 'Add BOS and parse special tokens (default true).' })),
  },
  { additionalProperties: true },
);

export const DetokenizeBody = Type.Object(
  {
    ids: Type.Array(Type.Integer({ minimum: 0 }), {
      maxItems: L.tokenIds,
      description: `Token ids, each 0..vocabulary-1 (another is a 400 naming it and the range). At most ${L.tokenIds}.`,
    }),
    special: Type.Optional(Type.Boolean({ description: 'Render special tokens as text (default true).' })),
  },
  { additionalProperties: true },
);

export const KoboldFinishReason = Type.Union([Type.Literal('stop'), Type.Literal('length'), Type.Literal('error')]);
export type KoboldFinishReason = Static<typeof KoboldFinishReason>;
