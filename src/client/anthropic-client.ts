import { type ClientConfig, definedFields } from './client-config.ts';
import { ProtocolError, ProviderStreamError } from './client-errors.ts';
import type { GenerationResult, StreamCallOptions, TextClient, TextRequest, TextStream } from './client-types.ts';
import { collectStream } from './collect-stream.ts';
import { fetchModelIds } from './model-ids.ts';
import type { AttemptState, ProviderAdapter, StreamSink } from './provider-adapter.ts';
import { isRecord } from './provider-error-body.ts';
import type { SseEvent } from './sse-reader.ts';
import { driveStream } from './stream-driver.ts';
import { TextStreamImpl } from './text-stream.ts';

/** Anthropic requires `max_tokens`; this is used when the request sets none. */
export const ANTHROPIC_DEFAULT_MAX_TOKENS = 1024;

/** Anthropic Messages API (`POST /v1/messages`), streamed as named SSE events. */
export class AnthropicClient implements TextClient {
  readonly api = 'anthropic' as const;
  readonly #config: ClientConfig;

  constructor(config: ClientConfig) {
    this.#config = config;
  }

  stream(request: TextRequest, options?: StreamCallOptions): TextStream {
    const adapter = new AnthropicStreamAdapter(this.#config, request);
    return new TextStreamImpl((signal) => driveStream(adapter, this.#config, signal), options?.signal);
  }

  generate(request: TextRequest, options?: StreamCallOptions): Promise<GenerationResult> {
    return collectStream(this.stream(request, options));
  }

  listModels(options?: StreamCallOptions): Promise<string[]> {
    return fetchModelIds(this.#config, anthropicHeaders(this.#config), options);
  }
}

function anthropicHeaders(config: ClientConfig): Record<string, string> {
  const headers: Record<string, string> = {
    ...config.headers,
    'anthropic-version': config.options.anthropicVersion ?? '2023-06-01',
  };
  if (config.options.apiKey) headers['x-api-key'] = config.options.apiKey;
  const inBrowser = typeof (globalThis as { document?: unknown }).document !== 'undefined';
  if (config.options.browserAccess ?? inBrowser) headers['anthropic-dangerous-direct-browser-access'] = 'true';
  return headers;
}

/** Maps Anthropic's stop reasons to the neutral ones; others (`tool_use`, `refusal`) pass through. */
function toStopReason(reason: string): string {
  if (reason === 'end_turn' || reason === 'stop_sequence') return 'stop';
  if (reason === 'max_tokens') return 'length';
  return reason;
}

/** Error types Anthropic documents as transient: worth re-sending when no text was delivered yet. */
const TRANSIENT_ERRORS = new Set(['overloaded_error', 'api_error', 'rate_limit_error']);

class AnthropicStreamAdapter implements ProviderAdapter {
  readonly framing = 'sse' as const;
  readonly #config: ClientConfig;
  readonly #request: TextRequest;
  #stopReason: string | undefined;

  constructor(config: ClientConfig, request: TextRequest) {
    this.#config = config;
    this.#request = request;
  }

  request() {
    const r = this.#request;
    // Anthropic takes system text as a top-level field, never as a message.
    const systemParts = [r.system, ...(r.messages ?? []).filter((m) => m.role === 'system').map((m) => m.content)];
    const system = systemParts.filter((part): part is string => Boolean(part)).join('\n\n');
    const messages = r.messages
      ? r.messages.filter((m) => m.role !== 'system')
      : [{ role: 'user' as const, content: r.prompt ?? '' }];
    const headers = anthropicHeaders(this.#config);
    headers['accept'] = 'text/event-stream';
    const body = definedFields({
      model: r.model ?? this.#config.options.model,
      max_tokens: r.maxTokens ?? ANTHROPIC_DEFAULT_MAX_TOKENS,
      system: system || undefined,
      messages,
      temperature: r.temperature,
      top_p: r.topP,
      top_k: r.topK,
      stop_sequences: r.stop,
      stream: true,
      ...r.extra,
    });
    return { method: 'POST' as const, url: `${this.#config.baseUrl}/messages`, headers, body };
  }

  onSseEvent(event: SseEvent, sink: StreamSink): void {
    if (event.event === 'ping') return;
    let data: unknown;
    try {
      data = JSON.parse(event.data);
    } catch (error) {
      throw new ProtocolError(`invalid JSON in ${event.event ?? 'message'} event: ${event.data.slice(0, 120)}`, error);
    }
    if (!isRecord(data)) throw new ProtocolError(`${event.event ?? 'message'} event data is not an object`);
    const type = event.event ?? (typeof data['type'] === 'string' ? data['type'] : undefined);
    switch (type) {
      case 'message_start': {
        const usage = isRecord(data['message']) ? data['message']['usage'] : undefined;
        if (isRecord(usage) && typeof usage['input_tokens'] === 'number')
          sink.usage({ promptTokens: usage['input_tokens'] });
        return;
      }
      case 'content_block_delta': {
        const delta = data['delta'];
        // thinking_delta, input_json_delta and signature_delta are not answer text.
        if (isRecord(delta) && delta['type'] === 'text_delta' && typeof delta['text'] === 'string')
          sink.text(delta['text']);
        return;
      }
      case 'message_delta': {
        const delta = data['delta'];
        if (isRecord(delta) && typeof delta['stop_reason'] === 'string') this.#stopReason = delta['stop_reason'];
        const usage = data['usage'];
        if (isRecord(usage) && typeof usage['output_tokens'] === 'number')
          sink.usage({ completionTokens: usage['output_tokens'] });
        return;
      }
      case 'message_stop':
        sink.finish(toStopReason(this.#stopReason ?? 'end_turn'));
        return;
      case 'error': {
        const error = isRecord(data['error']) ? data['error'] : {};
        const errorType = typeof error['type'] === 'string' ? error['type'] : undefined;
        sink.fail(
          new ProviderStreamError({
            message: typeof error['message'] === 'string' ? error['message'] : 'unknown error',
            type: errorType,
            raw: data,
            retryable: errorType !== undefined && TRANSIENT_ERRORS.has(errorType),
          }),
        );
        return;
      }
      default:
        // content_block_start/stop and event types added later carry no text.
        return;
    }
  }

  acceptsEndWithoutFinish(_state: AttemptState, sink: StreamSink): boolean {
    // message_delta carries the stop reason; losing only message_stop after it loses nothing.
    if (this.#stopReason === undefined) return false;
    sink.finish(toStopReason(this.#stopReason));
    return true;
  }

  async canResume(): Promise<boolean> {
    return false;
  }
}
