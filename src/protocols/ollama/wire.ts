import { type Static, Type } from 'typebox';
import { SAMPLING_LIMITS } from '../../core/sampling-limits.ts';
import { JSON_SCHEMA_MAX_COUNT, JSON_SCHEMA_MAX_DEPTH } from '../common/json-schema-limits.ts';

const L = SAMPLING_LIMITS;

/** Ollama's `options`: sampler names are mapped onto the shared sampler table in decode.ts. */
const Options = Type.Object(
  {
    num_predict: Type.Optional(
      Type.Integer({
        description: 'Tokens to generate; -1 or -2: until the context is full. Default: the server default.',
      }),
    ),
    num_ctx: Type.Optional(
      Type.Integer({ description: 'Context window for this request; at most the server context.' }),
    ),
    temperature: Type.Optional(Type.Number()),
    top_k: Type.Optional(
      Type.Integer({ description: '0 or below: disabled. Larger than the vocabulary is the vocabulary.' }),
    ),
    top_p: Type.Optional(Type.Number()),
    min_p: Type.Optional(Type.Number()),
    seed: Type.Optional(Type.Integer()),
    repeat_penalty: Type.Optional(Type.Number()),
    repeat_last_n: Type.Optional(
      Type.Integer({
        description:
          'Recent tokens the repeat, presence and frequency penalties look at (default 320). Larger than the context is the context; -1: the whole context; 0: no penalties (as in Ollama); any other negative is a 400.',
      }),
    ),
    presence_penalty: Type.Optional(Type.Number()),
    frequency_penalty: Type.Optional(Type.Number()),
    typical_p: Type.Optional(Type.Number({ description: 'Accepted, ignored.' })),
    tfs_z: Type.Optional(Type.Number({ description: 'Accepted, ignored.' })),
    mirostat: Type.Optional(Type.Number({ description: 'Accepted, ignored.' })),
    stop: Type.Optional(
      Type.Array(Type.String({ maxLength: L.stopStringLength }), {
        maxItems: L.stopStrings,
        description: `Strings that end the generation. At most ${L.stopStrings}, each at most ${L.stopStringLength} characters.`,
      }),
    ),
  },
  { additionalProperties: true },
);

const common = {
  model: Type.Optional(Type.String({ description: 'Accepted for compatibility; the loaded model answers.' })),
  stream: Type.Optional(
    Type.Boolean({ description: 'Default true: NDJSON lines as tokens arrive, then a final line with done: true.' }),
  ),
  format: Type.Optional(
    Type.Unknown({
      description: `"json" or a JSON schema: enforced with a grammar. A bad schema (unknown type, empty enum/oneOf/anyOf, unresolved or looping $ref, min above max, counts past ${JSON_SCHEMA_MAX_COUNT}, nesting past ${JSON_SCHEMA_MAX_DEPTH}) is a 400 naming the JSON path.`,
    }),
  ),
  options: Type.Optional(Options),
  keep_alive: Type.Optional(Type.Unknown({ description: 'Accepted, ignored (the model stays loaded).' })),
};

/** `POST /api/generate`. */
export const OllamaGenerateBody = Type.Object(
  {
    ...common,
    prompt: Type.Optional(
      Type.String({ description: 'Empty: nothing is generated (done_reason "load"), as in Ollama.' }),
    ),
    system: Type.Optional(Type.String()),
    raw: Type.Optional(Type.Boolean({ description: 'Send the prompt as is, without the chat template.' })),
    template: Type.Optional(
      Type.String({
        description: 'Accepted, ignored: Ollama Go templates are not supported (the model’s own template is used).',
      }),
    ),
    context: Type.Optional(
      Type.Array(Type.Integer({ minimum: 0 }), {
        maxItems: L.tokenIds,
        description: `The \`context\` of a previous response, to continue from it: token ids 0..vocabulary-1 (another is a 400), at most ${L.tokenIds}.`,
      }),
    ),
    suffix: Type.Optional(Type.String({ description: 'Not supported (non-empty is a 400).' })),
    images: Type.Optional(Type.Array(Type.String(), { description: 'Not supported (non-empty is a 400).' })),
  },
  { additionalProperties: true },
);
export type OllamaGenerateBody = Static<typeof OllamaGenerateBody>;

export const OllamaChatMessage = Type.Object(
  {
    role: Type.String({ description: 'system, user or assistant.' }),
    content: Type.String(),
    images: Type.Optional(Type.Array(Type.String())),
  },
  { additionalProperties: true },
);

/** `POST /api/chat`. */
export const OllamaChatBody = Type.Object(
  {
    ...common,
    messages: Type.Optional(
      Type.Array(OllamaChatMessage, { description: 'Empty: nothing is generated (done_reason "load").' }),
    ),
    tools: Type.Optional(Type.Unknown({ description: 'Not supported: a non-empty list is a 400.' })),
  },
  { additionalProperties: true },
);
export type OllamaChatBody = Static<typeof OllamaChatBody>;

export const OllamaShowBody = Type.Object(
  { model: Type.Optional(Type.String()), name: Type.Optional(Type.String()) },
  { additionalProperties: true },
);

/** `POST /api/embed` (`input`) and the older `POST /api/embeddings` (`prompt`). */
export const OllamaEmbedBody = Type.Object(
  {
    model: Type.Optional(Type.String()),
    input: Type.Optional(
      Type.Union([Type.String(), Type.Array(Type.String(), { maxItems: 2048 })], {
        description: 'A string or a list of at most 2048 strings.',
      }),
    ),
    prompt: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);
export type OllamaEmbedBody = Static<typeof OllamaEmbedBody>;

export type OllamaDoneReason = 'stop' | 'length' | 'load';

/** What every line of one response repeats, and how to get the final `context` (generate only). */
export interface OllamaResponseMeta {
  model: string;
  kind: 'generate' | 'chat';
  /** Prompt token ids followed by generated ones (`/api/generate`'s `context`), read when the generation ends. */
  context?: () => number[];
}
