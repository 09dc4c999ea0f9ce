/**
 * What each protocol's errors and stream endings look like on the wire, written from the protocols' own
 * documentation (not from our encoders), so hostile-input and fuzz tests can say "an error in the right
 * envelope" and "a truthful end" for any route.
 */
export type Protocol = 'kobold' | 'openai' | 'anthropic' | 'ollama';

const OLLAMA_PATHS = new Set([
  '/api/generate',
  '/api/chat',
  '/api/tags',
  '/api/show',
  '/api/version',
  '/api/ps',
  '/api/embed',
  '/api/embeddings',
  '/api/pull',
  '/api/push',
  '/api/create',
  '/api/copy',
  '/api/delete',
]);

/** The protocol a path speaks (the server picks its error envelope the same way). */
export function protocolOf(url: string): Protocol {
  const path = url.split('?')[0]?.replace(/\/+$/, '') ?? '';
  if (path.startsWith('/v1/messages')) return 'anthropic';
  if (path === '/v1' || path.startsWith('/v1/')) return 'openai';
  if (OLLAMA_PATHS.has(path)) return 'ollama';
  return 'kobold';
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Why `body` is not an error in `protocol`'s envelope, or undefined when it is:
 * Kobold `{"detail": {"msg", "type"}}`, OpenAI `{"error": {"message", "type"}}`, Anthropic
 * `{"type": "error", "error": {"type", "message"}}`, Ollama `{"error": "<message>"}`.
 */
export function envelopeProblem(protocol: Protocol, body: unknown): string | undefined {
  const shown = () => (typeof body === 'string' ? body : JSON.stringify(body))?.slice(0, 300);
  if (!isRecord(body)) return `the error body is not a JSON object: ${shown()}`;
  switch (protocol) {
    case 'kobold': {
      const detail = body.detail;
      if (!isRecord(detail) || typeof detail.msg !== 'string' || typeof detail.type !== 'string')
        return `not a Kobold error ({"detail": {"msg", "type"}}): ${shown()}`;
      return undefined;
    }
    case 'openai': {
      const error = body.error;
      if (!isRecord(error) || typeof error.message !== 'string' || typeof error.type !== 'string')
        return `not an OpenAI error ({"error": {"message", "type"}}): ${shown()}`;
      return undefined;
    }
    case 'anthropic': {
      const error = body.error;
      if (
        body.type !== 'error' ||
        !isRecord(error) ||
        typeof error.type !== 'string' ||
        typeof error.message !== 'string'
      )
        return `not an Anthropic error ({"type": "error", "error": {"type", "message"}}): ${shown()}`;
      return undefined;
    }
    case 'ollama':
      if (typeof body.error !== 'string') return `not an Ollama error ({"error": "<message>"}): ${shown()}`;
      return undefined;
  }
}

/** The human-readable message inside an error envelope ('' when there is none). */
export function envelopeMessage(body: unknown): string {
  if (!isRecord(body)) return '';
  if (isRecord(body.detail) && typeof body.detail.msg === 'string') return body.detail.msg;
  if (typeof body.error === 'string') return body.error;
  if (isRecord(body.error) && typeof body.error.message === 'string') return body.error.message;
  return '';
}

export interface SseEvent {
  id?: string;
  event?: string;
  data: string;
}

/** Standard SSE parsing of a whole (or partial) stream: comments skipped, an unterminated last event dropped. */
export function parseSse(text: string): SseEvent[] {
  const events: SseEvent[] = [];
  const blocks = text.replace(/\r\n?/g, '\n').split('\n\n');
  blocks.pop(); // the part after the last blank line is not a complete event
  for (const block of blocks) {
    const event: SseEvent = { data: '' };
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'data') data.push(value);
      else if (field === 'id') event.id = value;
      else if (field === 'event') event.event = value;
    }
    if (data.length === 0 && event.event === undefined) continue;
    event.data = data.join('\n');
    events.push(event);
  }
  return events;
}

const parse = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    // Kobold's data lines are Python-style JSON; the fields we read parse as JSON anyway.
    return undefined;
  }
};

/**
 * Why a streamed body did not end truthfully in `protocol`, or undefined when its last event is a final one:
 * Kobold a `finish_reason` that is not null, OpenAI `data: [DONE]` or an error payload, Anthropic `message_stop`
 * or `error`,
 * Ollama a last NDJSON line with `done: true` or an `error`.
 */
export function streamEndProblem(protocol: Protocol, text: string): string | undefined {
  const tail = () => JSON.stringify(text.slice(-300));
  if (protocol === 'ollama') {
    const lines = text.split('\n').filter((line) => line.trim() !== '');
    const last = parse(lines.at(-1) ?? '');
    if (isRecord(last) && (last.done === true || typeof last.error === 'string')) return undefined;
    return `the NDJSON stream did not end with a done or error line: ${tail()}`;
  }
  const events = parseSse(text);
  const last = events.at(-1);
  if (!last) return `the stream carried no event: ${tail()}`;
  switch (protocol) {
    case 'kobold': {
      const data = parse(last.data);
      if (isRecord(data) && typeof data.finish_reason === 'string') return undefined;
      return `the Kobold stream did not end with a finish_reason: ${tail()}`;
    }
    case 'openai': {
      // A stream that fails ends with an error payload (the SDKs throw it), not with [DONE].
      if (last.data.trim() === '[DONE]' || (isRecord(parse(last.data)) && 'error' in (parse(last.data) as object)))
        return undefined;
      return `the OpenAI stream did not end with data: [DONE] or an error: ${tail()}`;
    }
    case 'anthropic':
      if (last.event === 'message_stop' || last.event === 'error') return undefined;
      return `the Anthropic stream did not end with message_stop or error: ${tail()}`;
  }
}

/** Errors carried inside a 200 stream (an `error` event or an error data line), as parsed bodies. */
export function streamErrors(protocol: Protocol, text: string): unknown[] {
  if (protocol === 'ollama')
    return text
      .split('\n')
      .map(parse)
      .filter((line) => isRecord(line) && line.error !== undefined);
  return parseSse(text)
    .filter((event) => event.event === 'error' || /^\{\s*"error"/.test(event.data))
    .map((event) => parse(event.data));
}
