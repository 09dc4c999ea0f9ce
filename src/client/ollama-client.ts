import { type ClientConfig, definedFields } from './client-config.ts';
import { ProtocolError, ProviderStreamError } from './client-errors.ts';
import type { GenerationResult, StreamCallOptions, TextClient, TextRequest, TextStream } from './client-types.ts';
import { collectStream } from './collect-stream.ts';
import { requestJsonWithFailover } from './endpoints.ts';
import { LinkedAbortController } from './linked-abort-controller.ts';
import type { ProviderAdapter, StreamSink } from './provider-adapter.ts';
import { isRecord } from './provider-error-body.ts';
import { driveStream } from './stream-driver.ts';
import { TextStreamImpl } from './text-stream.ts';

/** Ollama's native API: `/api/generate` for a prompt, `/api/chat` for messages, NDJSON streams. */
export class OllamaClient implements TextClient {
  readonly api = 'ollama' as const;
  readonly #config: ClientConfig;

  constructor(config: ClientConfig) {
    this.#config = config;
  }

  stream(request: TextRequest, options?: StreamCallOptions): TextStream {
    const adapter = new OllamaStreamAdapter(this.#config, request);
    return new TextStreamImpl((signal) => driveStream(adapter, this.#config, signal), options?.signal);
  }

  generate(request: TextRequest, options?: StreamCallOptions): Promise<GenerationResult> {
    return collectStream(this.stream(request, options));
  }

  async listModels(options?: StreamCallOptions): Promise<string[]> {
    const controller = new LinkedAbortController(options?.signal);
    try {
      const body = await requestJsonWithFailover(
        this.#config.fetch,
        this.#config.endpoints,
        () => ({ method: 'GET', url: `${this.#config.baseUrl}/api/tags`, headers: ollamaHeaders(this.#config) }),
        controller.signal,
      );
      const models = isRecord(body) ? body['models'] : undefined;
      if (!Array.isArray(models)) throw new ProtocolError('/api/tags: expected {"models": [...]}');
      return models.flatMap((entry) => (isRecord(entry) && typeof entry['name'] === 'string' ? [entry['name']] : []));
    } finally {
      controller.dispose();
    }
  }
}

function ollamaHeaders(config: ClientConfig): Record<string, string> {
  const headers: Record<string, string> = { ...config.headers };
  if (config.options.apiKey) headers['authorization'] = `Bearer ${config.options.apiKey}`;
  return headers;
}

class OllamaStreamAdapter implements ProviderAdapter {
  readonly framing = 'ndjson' as const;
  readonly #config: ClientConfig;
  readonly #request: TextRequest;
  readonly #chat: boolean;

  constructor(config: ClientConfig, request: TextRequest) {
    this.#config = config;
    this.#request = request;
    this.#chat = request.messages !== undefined;
  }

  request() {
    const r = this.#request;
    const options = definedFields({
      num_predict: r.maxTokens,
      temperature: r.temperature,
      top_p: r.topP,
      top_k: r.topK,
      min_p: r.minP,
      repeat_penalty: r.repPen,
      repeat_last_n: r.repPenRange,
      seed: r.seed,
      stop: r.stop,
    });
    const messages = this.#chat
      ? [...(r.system ? [{ role: 'system', content: r.system }] : []), ...(r.messages ?? [])]
      : undefined;
    const body = definedFields({
      model: r.model ?? this.#config.options.model,
      ...(this.#chat ? { messages } : { prompt: r.prompt ?? '', system: r.system }),
      stream: true,
      options: Object.keys(options).length > 0 ? options : undefined,
      ...r.extra,
    });
    const url = `${this.#config.baseUrl}/api/${this.#chat ? 'chat' : 'generate'}`;
    return { method: 'POST' as const, url, headers: ollamaHeaders(this.#config), body };
  }

  onJsonLine(value: unknown, sink: StreamSink): void {
    if (!isRecord(value)) throw new ProtocolError('stream line is not an object');
    if (typeof value['error'] === 'string') {
      sink.fail(new ProviderStreamError({ message: value['error'], raw: value }));
      return;
    }
    const message = value['message'];
    const text = isRecord(message) ? message['content'] : value['response'];
    if (typeof text === 'string') sink.text(text);
    if (value['done'] === true) {
      sink.usage(
        definedFields({
          promptTokens: typeof value['prompt_eval_count'] === 'number' ? value['prompt_eval_count'] : undefined,
          completionTokens: typeof value['eval_count'] === 'number' ? value['eval_count'] : undefined,
        }),
      );
      sink.finish(typeof value['done_reason'] === 'string' ? value['done_reason'] : 'stop', value);
    }
  }

  async canResume(): Promise<boolean> {
    return false;
  }
}
