import { type Static, Type } from 'typebox';
import { SAMPLING_LIMITS } from '../../core/sampling-limits.ts';

const L = SAMPLING_LIMITS;

const AnthropicMessage = Type.Object(
  {
    role: Type.Union([Type.Literal('user'), Type.Literal('assistant')]),
    // Checked in decode.ts (a string or text blocks): ajv's coercion inside a union would rewrite the data.
    content: Type.Unknown({ description: 'A string or a list of {"type": "text", "text"} blocks.' }),
  },
  { additionalProperties: true },
);

const conversation = {
  model: Type.String({ description: 'Accepted for compatibility; the loaded model answers.' }),
  messages: Type.Array(AnthropicMessage, {
    minItems: 1,
    description: 'A trailing assistant message is continued (prefill).',
  }),
  system: Type.Optional(Type.Unknown({ description: 'A string or a list of text blocks.' })),
  tools: Type.Optional(Type.Unknown({ description: 'Not supported: a non-empty list is a 400.' })),
};

/** `POST /v1/messages`. */
export const AnthropicMessagesBody = Type.Object(
  {
    ...conversation,
    max_tokens: Type.Integer({
      minimum: 1,
      description: 'Tokens to generate; capped so the prompt keeps room in the context.',
    }),
    stop_sequences: Type.Optional(
      Type.Array(Type.String({ maxLength: L.stopStringLength }), {
        maxItems: L.stopStrings,
        description: `Strings that end the turn (stop_reason "stop_sequence"). At most ${L.stopStrings}, each at most ${L.stopStringLength} characters.`,
      }),
    ),
    temperature: Type.Optional(Type.Number({ minimum: 0, description: '0: greedy.' })),
    top_p: Type.Optional(Type.Number({ description: 'Nucleus sampling.' })),
    top_k: Type.Optional(
      Type.Integer({
        minimum: 0,
        description: 'Top-k sampling; 0 disables it. Larger than the vocabulary is the vocabulary.',
      }),
    ),
    stream: Type.Optional(Type.Boolean({ description: 'Server-Sent Events: message_start … message_stop.' })),
    metadata: Type.Optional(Type.Unknown()),
    tool_choice: Type.Optional(Type.Unknown()),
  },
  { additionalProperties: true },
);
export type AnthropicMessagesBody = Static<typeof AnthropicMessagesBody>;

/** `POST /v1/messages/count_tokens`. */
export const AnthropicCountTokensBody = Type.Object(conversation, { additionalProperties: true });
export type AnthropicCountTokensBody = Static<typeof AnthropicCountTokensBody>;

export type AnthropicStopReason = 'end_turn' | 'max_tokens' | 'stop_sequence';

/** What the response and every stream event of one request repeat; stable across a resumed stream. */
export interface AnthropicResponseMeta {
  id: string;
  model: string;
  /** The client's own stop sequences: only these are reported as `stop_sequence` (template stops end the turn). */
  stopSequences: readonly string[];
}
