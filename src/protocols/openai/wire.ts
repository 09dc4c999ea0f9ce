import { type Static, Type } from 'typebox';
import { SAMPLING_LIMITS } from '../../core/sampling-limits.ts';
import { JSON_SCHEMA_MAX_COUNT, JSON_SCHEMA_MAX_DEPTH, JSON_SCHEMA_MAX_NODES } from '../common/json-schema-limits.ts';
import { StreamIntervalField } from '../common/stream-interval.ts';

const L = SAMPLING_LIMITS;

const nullable = <T extends Parameters<typeof Type.Optional>[0]>(schema: T) =>
  Type.Optional(Type.Union([schema, Type.Null()]));
const num = (description: string) => nullable(Type.Number({ description }));
const int = (description: string, options: { minimum?: number; maximum?: number } = {}) =>
  nullable(Type.Integer({ description, ...options }));

/** Sampling fields both OpenAI endpoints share. Kobold sampler names (top_k, min_p, rep_pen, grammar…) are honoured too. */
const samplingFields = {
  model: Type.Optional(Type.String({ description: 'Accepted for compatibility; the loaded model answers.' })),
  max_tokens: int('Tokens to generate (default: the server default). Capped so the prompt keeps room in the context.', {
    minimum: 1,
  }),
  temperature: num('0: greedy. Default: the server default (0.7).'),
  top_p: num('Nucleus sampling; 1 disables it.'),
  seed: int('Same seed, prompt and settings give the same text.'),
  presence_penalty: num('Penalty for tokens already present.'),
  frequency_penalty: num('Penalty proportional to how often a token appeared.'),
  logit_bias: nullable(
    Type.Record(Type.String(), Type.Number(), {
      maxProperties: L.logitBias,
      description: `{"token id": bias}: ids are integers 0..vocabulary-1 (another id is a 400 naming it and the range); -100 or lower bans the token, above 100 is 100. At most ${L.logitBias} entries.`,
    }),
  ),
  stop: nullable(
    Type.Union(
      [
        Type.String({ maxLength: L.stopStringLength }),
        Type.Array(Type.String({ maxLength: L.stopStringLength }), { maxItems: L.stopStrings }),
      ],
      {
        description: `Strings that end the generation; not included in the output. At most ${L.stopStrings}, each at most ${L.stopStringLength} characters.`,
      },
    ),
  ),
  n: int('Only 1 is supported.', { minimum: 1 }),
  ignore_eos: nullable(
    Type.Boolean({ description: "llama.cpp's and vLLM's name: the end-of-stream token is never generated." }),
  ),
  stream: nullable(Type.Boolean({ description: 'Server-Sent Events, ended by `data: [DONE]`.' })),
  stream_options: nullable(
    Type.Object({ include_usage: Type.Optional(Type.Boolean()) }, { additionalProperties: true }),
  ),
  stream_interval_ms: StreamIntervalField,
  user: Type.Optional(Type.String()),
};

export const OpenaiChatMessage = Type.Object(
  {
    role: Type.Union([
      Type.Literal('system'),
      Type.Literal('developer'),
      Type.Literal('user'),
      Type.Literal('assistant'),
      Type.Literal('tool'),
      Type.Literal('function'),
    ]),
    // Polymorphic fields are checked in decode.ts: ajv's type coercion inside a union rewrites the data.
    content: Type.Optional(
      Type.Unknown({ description: 'A string, a list of {"type": "text", "text"} parts, or null.' }),
    ),
    name: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);
export type OpenaiChatMessage = Static<typeof OpenaiChatMessage>;

export const ResponseFormat = Type.Object(
  {
    type: Type.Union([Type.Literal('text'), Type.Literal('json_object'), Type.Literal('json_schema')]),
    json_schema: Type.Optional(
      Type.Object(
        { name: Type.Optional(Type.String()), schema: Type.Optional(Type.Unknown()), strict: nullable(Type.Boolean()) },
        { additionalProperties: true },
      ),
    ),
  },
  {
    additionalProperties: true,
    description: `json_object and json_schema are enforced with a grammar while sampling. The schema is checked first: an unknown type, an empty enum/oneOf/anyOf, a $ref that does not resolve to #/$defs/NAME or loops without an object or array between, min above max, counts past ${JSON_SCHEMA_MAX_COUNT}, nesting past ${JSON_SCHEMA_MAX_DEPTH} or more than ${JSON_SCHEMA_MAX_NODES} values is a 400 naming the JSON path. A Kobold-style grammar field (GBNF) is honoured too and checked the same way as on /api/v1/generate.`,
  },
);
export type ResponseFormat = Static<typeof ResponseFormat>;

/** `POST /v1/chat/completions`. */
export const OpenaiChatBody = Type.Object(
  {
    messages: Type.Array(OpenaiChatMessage, {
      minItems: 1,
      description: 'Rendered with the model’s chat template (fallback: ChatML or KoboldCpp’s instruct tags).',
    }),
    ...samplingFields,
    max_completion_tokens: int('Newer name of max_tokens; wins when both are sent.', { minimum: 1 }),
    logprobs: nullable(Type.Boolean({ description: 'Return the log probability of each output token.' })),
    top_logprobs: int(`Alternatives per token (needs logprobs: true), 0..${L.logprobs}.`, {
      minimum: 0,
      maximum: L.logprobs,
    }),
    response_format: nullable(ResponseFormat),
    tools: Type.Optional(Type.Unknown({ description: 'Not supported: a non-empty list is a 400.' })),
    tool_choice: Type.Optional(Type.Unknown()),
  },
  { additionalProperties: true },
);
export type OpenaiChatBody = Static<typeof OpenaiChatBody>;

/** `POST /v1/completions`. */
export const OpenaiCompletionBody = Type.Object(
  {
    prompt: Type.Optional(
      Type.Unknown({
        description: `A string, a list holding one string, or a list of token ids (integers 0..vocabulary-1, at most ${L.tokenIds}). Anything else is a 400.`,
      }),
    ),
    ...samplingFields,
    logprobs: int('Alternatives per token to return (0–5); also returns each chosen token’s log probability.', {
      minimum: 0,
      maximum: 5,
    }),
    echo: nullable(Type.Boolean({ description: 'Not supported (true is a 400).' })),
    suffix: nullable(Type.String({ description: 'Not supported (a non-empty suffix is a 400).' })),
    best_of: int('Only 1 is supported.', { minimum: 1 }),
    response_format: nullable(ResponseFormat),
  },
  { additionalProperties: true },
);
export type OpenaiCompletionBody = Static<typeof OpenaiCompletionBody>;

/** `POST /v1/embeddings`. */
export const OpenaiEmbeddingsBody = Type.Object(
  {
    input: Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1, maxItems: 2048 })], {
      description: 'A string or a list of 1 to 2048 strings (OpenAI’s own limit). Token-id inputs are not supported.',
    }),
    model: Type.Optional(Type.String()),
    encoding_format: Type.Optional(Type.Union([Type.Literal('float'), Type.Literal('base64')])),
  },
  { additionalProperties: true },
);
export type OpenaiEmbeddingsBody = Static<typeof OpenaiEmbeddingsBody>;

export type OpenaiFinishReason = 'stop' | 'length';

/** What every response and chunk of one request repeats; stable across a resumed stream. */
export interface OpenaiResponseMeta {
  id: string;
  /** Unix seconds when the generation was created. */
  created: number;
  model: string;
  systemFingerprint: string;
  /** Send a usage chunk before `[DONE]` (and `usage: null` on the others), as OpenAI does. */
  includeUsage: boolean;
  /** Alternatives per token to return; undefined when logprobs were not requested. */
  topLogprobs?: number;
}
