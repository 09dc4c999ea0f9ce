import { type ClientConfig, definedFields, randomKey } from './client-config.ts';
import { ProtocolError, ProviderStreamError } from './client-errors.ts';
import type {
  ChatMessage,
  GenerationResult,
  StreamCallOptions,
  TextClient,
  TextRequest,
  TextStream,
} from './client-types.ts';
import { collectStream } from './collect-stream.ts';
import { KeepaliveStatus } from './keepalive-status.ts';
import { fetchModelIds } from './model-ids.ts';
import type { AttemptState, ProviderAdapter, StreamSink } from './provider-adapter.ts';
import { isRecord, readProviderErrorBody } from './provider-error-body.ts';
import type { SseEvent } from './sse-reader.ts';
import { driveStream } from './stream-driver.ts';
import { TextStreamImpl } from './text-stream.ts';

/**
 * OpenAI-compatible servers: OpenAI, OpenRouter, DeepSeek, Mistral, llama.cpp, vLLM, KoboldCpp's `/v1`, ours.
 * `messages` (or `system`) selects `/chat/completions`; a bare `prompt` selects `/completions`.
 */
export class OpenAIClient implements TextClient {
  readonly api = 'openai' as const;
  readonly #config: ClientConfig;

  constructor(config: ClientConfig) {
    this.#config = config;
  }

  stream(request: TextRequest, options?: StreamCallOptions): TextStream {
    const adapter = new OpenAIStreamAdapter(this.#config, request);
    return new TextStreamImpl((signal) => driveStream(adapter, this.#config, signal), options?.signal);
  }

  generate(request: TextRequest, options?: StreamCallOptions): Promise<GenerationResult> {
    return collectStream(this.stream(request, options));
  }

  listModels(options?: StreamCallOptions): Promise<string[]> {
    return fetchModelIds(this.#config, authHeaders(this.#config), options);
  }
}

function authHeaders(config: ClientConfig): Record<string, string> {
  const headers: Record<string, string> = { ...config.headers };
  if (config.options.apiKey) headers['authorization'] = `Bearer ${config.options.apiKey}`;
  return headers;
}

export function toOpenAIMessages(request: TextRequest): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (request.system) messages.push({ role: 'system', content: request.system });
  if (request.messages) messages.push(...request.messages);
  else if (request.prompt !== undefined) messages.push({ role: 'user', content: request.prompt });
  return messages;
}

class OpenAIStreamAdapter implements ProviderAdapter {
  readonly framing = 'sse' as const;
  readonly #keepalive = new KeepaliveStatus();
  readonly #config: ClientConfig;
  readonly #request: TextRequest;
  readonly #chat: boolean;
  readonly #resume: boolean;
  /** Our server's resume key; sent only when resume is on (a custom header fails CORS on other hosts). */
  readonly #streamKey: string;
  #finishReason: string | undefined;
  #usageSeen = false;

  constructor(config: ClientConfig, request: TextRequest) {
    this.#config = config;
    this.#request = request;
    this.#chat = request.messages !== undefined || request.system !== undefined || request.prompt === undefined;
    this.#resume = config.options.resume === true;
    this.#streamKey = request.genkey ?? randomKey('ks-');
  }

  request(state: AttemptState) {
    const r = this.#request;
    const headers = authHeaders(this.#config);
    headers['accept'] = 'text/event-stream';
    if (this.#resume) {
      headers['x-kindling-stream'] = this.#streamKey;
      if (state.resume) headers['last-event-id'] = state.lastEventId ?? '0';
    }
    const body = definedFields({
      model: r.model ?? this.#config.options.model,
      ...(this.#chat ? { messages: toOpenAIMessages(r) } : { prompt: r.prompt }),
      stream: true,
      stream_options: this.#config.options.includeUsage === false ? undefined : { include_usage: true },
      max_tokens: r.maxTokens,
      temperature: r.temperature,
      top_p: r.topP,
      // Not OpenAI fields, but OpenRouter, vLLM, llama.cpp and ours read them; sent only when set.
      top_k: r.topK,
      min_p: r.minP,
      repetition_penalty: r.repPen,
      seed: r.seed,
      stop: r.stop,
      ...r.extra,
    });
    const url = `${this.#config.baseUrl}/${this.#chat ? 'chat/completions' : 'completions'}`;
    return { method: 'POST' as const, url, headers, body };
  }

  onSseComment(comment: string, sink: StreamSink): void {
    this.#keepalive.onComment(comment, sink);
  }

  onSseEvent(event: SseEvent, sink: StreamSink): void {
    const data = event.data.trim();
    if (data === '[DONE]') {
      sink.finish(this.#finishReason ?? 'stop');
      return;
    }
    let chunk: unknown;
    try {
      chunk = JSON.parse(data);
    } catch (error) {
      throw new ProtocolError(`invalid JSON in stream: ${data.slice(0, 120)}`, error);
    }
    if (!isRecord(chunk)) throw new ProtocolError('stream chunk is not an object');
    if (chunk['error'] !== undefined || event.event === 'error') {
      // OpenRouter sends `data: {"error":{…}}` (and a last chunk with finish_reason "error") mid-stream.
      const provider = readProviderErrorBody(chunk);
      sink.fail(
        new ProviderStreamError({
          message: provider.message ?? 'unknown error',
          type: provider.type,
          code: provider.code,
          raw: chunk,
        }),
      );
      return;
    }
    const usage = chunk['usage'];
    if (isRecord(usage)) {
      this.#usageSeen = true;
      sink.usage(
        definedFields({
          promptTokens: numberOrUndefined(usage['prompt_tokens']),
          completionTokens: numberOrUndefined(usage['completion_tokens']),
        }),
      );
    }
    const choices = chunk['choices'];
    const choice = Array.isArray(choices) ? choices[0] : undefined;
    if (!isRecord(choice)) return;
    const delta = choice['delta'];
    const text = isRecord(delta) ? delta['content'] : choice['text'];
    if (typeof text === 'string') sink.text(text);
    const finish = choice['finish_reason'];
    // KoboldCpp 1.76 sends the string "null" on every chunk before the last.
    if (typeof finish === 'string' && finish !== 'null') {
      if (finish === 'error') {
        sink.fail(
          new ProviderStreamError({
            message: 'the provider ended the generation with an error',
            type: 'error',
            raw: chunk,
          }),
        );
        return;
      }
      this.#finishReason = finish;
    }
  }

  acceptsEndWithoutFinish(_state: AttemptState, sink: StreamSink): boolean {
    // KoboldCpp 1.76 writes `data: [DONE]` without the blank line, so the parser never sees it; a finish_reason
    // already received makes the answer complete.
    if (this.#finishReason === undefined) return false;
    // A resumable server (ours) still owes the usage chunk and [DONE]: resume for them instead of losing usage.
    if (this.#resume && this.#config.options.includeUsage !== false && !this.#usageSeen) return false;
    sink.finish(this.#finishReason);
    return true;
  }

  async canResume(): Promise<boolean> {
    return this.#resume;
  }
}

function numberOrUndefined(value: unknown): number | undefined {
  return typeof value === 'number' ? value : undefined;
}
