import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { KindlingError } from '../../core/kindling-error.ts';
import { errorText, type UpstreamHttp } from './upstream-http.ts';

export interface CompletionUsage {
  promptTokens: number;
  completionTokens: number;
  cachedPromptTokens?: number;
}

/** One streamed `text_completion` chunk, reduced to what the engine uses. */
export interface CompletionChunk {
  text: string;
  /** The chunk's token ids where the upstream sends them (vLLM `token_ids`, llama.cpp `tokens`), else empty. */
  tokens: number[];
  finish?: string;
  usage?: CompletionUsage;
}

type Json = Record<string, unknown>;
const record = (value: unknown): Json => (value && typeof value === 'object' ? (value as Json) : {});
const count = (value: unknown): number | undefined =>
  typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
const idList = (value: unknown): number[] =>
  Array.isArray(value) && value.every((id) => Number.isInteger(id)) ? (value as number[]) : [];

function usageOf(chunk: Json): CompletionUsage | undefined {
  const usage = record(chunk.usage);
  const prompt = count(usage.prompt_tokens);
  const completion = count(usage.completion_tokens);
  if (prompt === undefined || completion === undefined) return undefined;
  // OpenAI's and vLLM's `prompt_tokens_details.cached_tokens`, else llama-server's `timings.cache_n`.
  const cached = count(record(usage.prompt_tokens_details).cached_tokens) ?? count(record(chunk.timings).cache_n);
  return {
    promptTokens: prompt,
    completionTokens: completion,
    ...(cached !== undefined ? { cachedPromptTokens: cached } : {}),
  };
}

function chunkOf(data: string, http: UpstreamHttp): CompletionChunk {
  let chunk: Json;
  try {
    chunk = record(JSON.parse(data));
  } catch {
    throw http.unavailable(`its stream sent an event that is not JSON: ${data.slice(0, 200)}`);
  }
  if (chunk.error !== undefined)
    throw new KindlingError(
      'model_error',
      `The upstream server ${http.base} failed the generation: ${errorText(JSON.stringify(chunk))}`,
    );
  const choice = record(Array.isArray(chunk.choices) ? chunk.choices[0] : undefined);
  const usage = usageOf(chunk);
  const finish = typeof choice.finish_reason === 'string' ? choice.finish_reason : undefined;
  return {
    text: typeof choice.text === 'string' ? choice.text : '',
    tokens: idList(choice.token_ids ?? chunk.tokens),
    ...(finish ? { finish } : {}),
    ...(usage ? { usage } : {}),
  };
}

/**
 * The chunks of an upstream's streamed `/v1/completions` response until `data: [DONE]` (SSE framing by
 * eventsource-parser). A stream that ends before a finish reason or `[DONE]` was cut: a 503 naming the upstream.
 */
export async function* completionChunks(response: Response, http: UpstreamHttp): AsyncGenerator<CompletionChunk> {
  const events: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => events.push(event) });
  const decoder = new TextDecoder();
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  let finished = false;
  try {
    for (;;) {
      let read: ReadableStreamReadResult<Uint8Array>;
      try {
        read = await reader.read();
      } catch (error) {
        throw http.unavailable(`its stream broke off (${error instanceof Error ? error.message : error})`);
      }
      if (read.done) break;
      parser.feed(decoder.decode(read.value, { stream: true }));
      for (const event of events.splice(0)) {
        if (event.data.trim() === '[DONE]') return;
        const chunk = chunkOf(event.data, http);
        if (chunk.finish) finished = true;
        yield chunk;
      }
    }
    if (!finished) throw http.unavailable('it closed the stream before the generation finished');
  } finally {
    // Early (the consumer stopped, or [DONE]): the rest of the body is not read, and its connection is let go.
    reader.cancel().catch(() => {});
  }
}
