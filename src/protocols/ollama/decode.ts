import type { ChatMessage } from '../../core/chat-message.ts';
import type { GenerationRequest } from '../../core/generation-request.ts';
import { KindlingError } from '../../core/kindling-error.ts';
import { type ChatTemplateSource, renderChatPrompt } from '../common/fallback-chat-template.ts';
import { decodeSampling } from '../common/sampler-table.ts';
import { normalizeStopSequences } from '../common/stop-sequences.ts';
import type { OllamaChatBody, OllamaGenerateBody } from './wire.ts';

export interface OllamaDecodeOptions {
  defaultMaxTokens: number;
  contextSize: number;
  /** Grammar from `format` (see format-grammar.ts). */
  grammar?: string;
  /** Text of a previous response's `context` token ids (generate only). */
  contextText?: string;
}

/** Ollama option names that differ from the shared sampler table's (the others are the same names or its aliases). */
const OPTION_RENAMES: Readonly<Record<string, string>> = { typical_p: 'typical', tfs_z: 'tfs' };

/** `/api/generate` → the core request: the prompt goes through the chat template unless `raw`. */
export function decodeOllamaGenerate(
  body: OllamaGenerateBody,
  template: ChatTemplateSource,
  options: OllamaDecodeOptions,
): GenerationRequest {
  if (body.suffix)
    throw new KindlingError('not_supported', 'suffix: fill-in-the-middle is not supported by this server.', {
      field: 'suffix',
    });
  if (body.images && body.images.length > 0)
    throw new KindlingError('not_supported', 'images: the loaded model has no vision support.', { field: 'images' });
  const prompt = body.prompt ?? '';
  if (body.raw) return coreRequest(body, `${options.contextText ?? ''}${prompt}`, [], options);
  const messages: ChatMessage[] = body.system ? [{ role: 'system', content: body.system }] : [];
  messages.push({ role: 'user', content: prompt });
  const chat = renderChatPrompt(messages, template);
  return coreRequest(body, `${options.contextText ?? ''}${chat.prompt}`, chat.stopStrings, options);
}

/** `/api/chat` → the core request through the chat template. */
export function decodeOllamaChat(
  body: OllamaChatBody,
  template: ChatTemplateSource,
  options: OllamaDecodeOptions,
): GenerationRequest {
  if (Array.isArray(body.tools) && body.tools.length > 0)
    throw new KindlingError('not_supported', 'tools: tool calling is not supported by this server.', {
      field: 'tools',
    });
  const messages = (body.messages ?? []).map((message, i): ChatMessage => {
    if (message.images && message.images.length > 0)
      throw new KindlingError('not_supported', `messages[${i}].images: the loaded model has no vision support.`, {
        field: `messages[${i}].images`,
      });
    if (message.role !== 'system' && message.role !== 'user' && message.role !== 'assistant') {
      throw KindlingError.badInput(
        `messages[${i}].role`,
        `"${message.role}" is not supported (system, user or assistant)`,
      );
    }
    return { role: message.role, content: message.content };
  });
  const chat = renderChatPrompt(messages, template);
  return coreRequest(body, chat.prompt, chat.stopStrings, options);
}

function coreRequest(
  body: OllamaGenerateBody | OllamaChatBody,
  prompt: string,
  templateStops: string[],
  options: OllamaDecodeOptions,
): GenerationRequest {
  const raw: Record<string, unknown> = { ...(body.options ?? {}) };
  for (const [from, to] of Object.entries(OPTION_RENAMES)) if (from in raw) raw[to] = raw[from];
  // Ollama's (and llama.cpp's) repeat_last_n 0 turns every penalty off; for KoboldCpp's rep_pen_range 0 is 1 token.
  if (raw.repeat_last_n === 0)
    Object.assign(raw, { repeat_last_n: undefined, repeat_penalty: 1, presence_penalty: 0, frequency_penalty: 0 });
  if (options.grammar) raw.grammar = options.grammar;
  const numPredict = body.options?.num_predict;
  // Ollama's -1 (forever) and -2 (fill the context) both end when the context is full.
  const maxTokens =
    numPredict === undefined ? options.defaultMaxTokens : numPredict < 0 ? options.contextSize : numPredict;
  const numCtx = body.options?.num_ctx;
  return {
    prompt,
    memory: '',
    maxTokens,
    ...(numCtx !== undefined && numCtx > 0 ? { maxContextTokens: numCtx } : {}),
    parseSpecialTokens: true,
    stopStrings: [...new Set([...normalizeStopSequences(body.options?.stop, 'options.stop'), ...templateStops])],
    trimStop: true,
    banEos: false,
    bypassEos: false,
    renderSpecial: false,
    sampling: decodeSampling(raw),
    logprobs: 0,
    abortOnDisconnect: true,
  };
}
