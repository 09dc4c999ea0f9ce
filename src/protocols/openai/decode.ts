import type { ChatMessage } from '../../core/chat-message.ts';
import type { GenerationRequest } from '../../core/generation-request.ts';
import { KindlingError } from '../../core/kindling-error.ts';
import { SAMPLING_LIMITS } from '../../core/sampling-limits.ts';
import { type ChatTemplateSource, renderChatPrompt } from '../common/fallback-chat-template.ts';
import { decodeSampling } from '../common/sampler-table.ts';
import { normalizeStopSequences } from '../common/stop-sequences.ts';
import type { OpenaiChatBody, OpenaiChatMessage, OpenaiCompletionBody } from './wire.ts';

export interface OpenaiDecodeOptions {
  defaultMaxTokens: number;
  /** Grammar from `response_format` (see response-format.ts), computed by the route because it may be async. */
  grammar?: string;
  /** Client-chosen stream key (`X-Kindling-Stream` / `Idempotency-Key`): makes the stream resumable. */
  key?: string;
}

type Body = Record<string, unknown>;

/** `/v1/chat/completions` → the core request: messages through the chat template, stops = user's + template's. */
export function decodeOpenaiChat(
  body: OpenaiChatBody,
  template: ChatTemplateSource,
  options: OpenaiDecodeOptions,
): GenerationRequest {
  rejectUnsupported(body);
  if (Array.isArray(body.tools) && body.tools.length > 0)
    throw new KindlingError('not_supported', 'tools: tool calling is not supported by this server.', {
      field: 'tools',
    });
  const chat = renderChatPrompt(body.messages.map(chatMessage), template);
  const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? options.defaultMaxTokens;
  const logprobs = body.logprobs ? Math.max(1, body.top_logprobs ?? 0) : 0;
  return coreRequest(
    body,
    chat.prompt,
    maxTokens,
    [...normalizeStopSequences(body.stop), ...chat.stopStrings],
    logprobs,
    options,
  );
}

/** `/v1/completions` → the core request: the prompt as raw text, as OpenAI's legacy endpoint does. */
export function decodeOpenaiCompletion(
  body: OpenaiCompletionBody,
  /** The text of a token-id prompt (`promptIds`), detokenized by the caller. */
  idsText: string | undefined,
  options: OpenaiDecodeOptions,
): GenerationRequest {
  rejectUnsupported(body);
  if (body.echo)
    throw new KindlingError('not_supported', 'echo: echoing the prompt is not supported by this server.', {
      field: 'echo',
    });
  if (body.suffix)
    throw new KindlingError('not_supported', 'suffix: insertion (suffix) is not supported by this server.', {
      field: 'suffix',
    });
  if ((body.best_of ?? 1) !== 1)
    throw new KindlingError('not_supported', 'best_of: only 1 is supported.', { field: 'best_of' });
  const prompt = idsText ?? completionPrompt(body.prompt);
  // `logprobs: 0` still asks for the chosen tokens' log probabilities, so at least one alternative is computed.
  const wanted = body.logprobs === undefined || body.logprobs === null ? 0 : Math.max(1, body.logprobs);
  return coreRequest(
    body,
    prompt,
    body.max_tokens ?? options.defaultMaxTokens,
    normalizeStopSequences(body.stop),
    wanted,
    options,
  );
}

function coreRequest(
  body: Body,
  prompt: string,
  maxTokens: number,
  stopStrings: string[],
  logprobs: number,
  options: OpenaiDecodeOptions,
): GenerationRequest {
  // A response_format grammar replaces any Kobold-style `grammar` field sent alongside it.
  const sampling = decodeSampling(options.grammar ? { ...body, grammar: options.grammar } : body);
  return {
    prompt,
    memory: '',
    maxTokens,
    parseSpecialTokens: true,
    stopStrings: [...new Set(stopStrings)],
    trimStop: true,
    banEos: body.ignore_eos === true,
    bypassEos: false,
    renderSpecial: false,
    sampling,
    logprobs,
    ...(options.key ? { key: options.key } : {}),
    // A keyed stream can be resumed, so it keeps running when its client leaves; an anonymous one is abandoned.
    abortOnDisconnect: options.key === undefined,
  };
}

function rejectUnsupported(body: { n?: number | null }): void {
  if ((body.n ?? 1) !== 1)
    throw new KindlingError('not_supported', 'n: only one choice per request is supported (n = 1).', { field: 'n' });
}

/** A prompt given as token ids (checked against the limit), or undefined for any other prompt. */
export function promptIds(prompt: unknown): number[] | undefined {
  if (!Array.isArray(prompt) || prompt.length === 0) return undefined;
  if (!prompt.every((item): item is number => Number.isInteger(item) && item >= 0)) return undefined;
  if (prompt.length > SAMPLING_LIMITS.tokenIds)
    throw KindlingError.badInput('prompt', `${prompt.length} token ids; at most ${SAMPLING_LIMITS.tokenIds}`);
  return prompt;
}

function completionPrompt(prompt: unknown): string {
  if (prompt === undefined || prompt === null) return '';
  if (typeof prompt === 'string') return prompt;
  if (!Array.isArray(prompt))
    throw KindlingError.badInput('prompt', 'expected a string, a list of strings or a list of token ids');
  if (prompt.length === 0) return '';
  if (!prompt.every((item) => typeof item === 'string'))
    throw KindlingError.badInput('prompt', 'expected a string, a list of strings or a list of token ids');
  if (prompt.length > 1)
    throw new KindlingError(
      'not_supported',
      'prompt: a list of several prompts is not supported; send one prompt per request.',
      { field: 'prompt' },
    );
  return prompt[0] as string;
}

/** OpenAI message → our chat message; text parts are joined, anything else is a 400 naming the part. */
function chatMessage(message: OpenaiChatMessage, index: number): ChatMessage {
  const field = `messages[${index}]`;
  if (message.role === 'tool' || message.role === 'function') {
    throw new KindlingError(
      'not_supported',
      `${field}.role: "${message.role}" messages need tool calling, which this server does not support.`,
      { field: `${field}.role` },
    );
  }
  const role = message.role === 'developer' ? 'system' : message.role;
  const content = message.content;
  if (content === undefined || content === null) return { role, content: '' };
  if (typeof content === 'string') return { role, content };
  if (!Array.isArray(content))
    throw KindlingError.badInput(`${field}.content`, 'expected a string or a list of content parts');
  const texts = content.map((part: unknown, j) => {
    const typed = part as { type?: unknown; text?: unknown } | null;
    if (typed?.type === 'text' && typeof typed.text === 'string') return typed.text;
    if (typeof typed?.type !== 'string')
      throw KindlingError.badInput(`${field}.content[${j}]`, 'expected a content part with a "type"');
    throw new KindlingError(
      'not_supported',
      `${field}.content[${j}]: "${typed.type}" parts are not supported (text only).`,
      { field: `${field}.content[${j}]` },
    );
  });
  return { role, content: texts.join('\n') };
}
