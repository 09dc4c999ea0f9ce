/**
 * The provider-neutral vocabulary of the SDK. Every client (Kobold, OpenAI-compatible, Anthropic, Ollama)
 * takes a `TextRequest` and yields `StreamEvent`s, so callers never branch on the provider.
 */

/** Which wire protocol a client speaks. */
export type ApiKind = 'kobold' | 'openai' | 'anthropic' | 'ollama';

/** One turn of a chat. `system` turns are folded into the provider's system field where it has one. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface RetryOptions {
  /**
   * How many consecutive failed attempts (connect errors, retryable statuses, dropped streams) are retried
   * before the error is thrown. The count resets whenever an attempt delivers new events, so a long stream
   * that is cut many times but keeps progressing is never given up on. Default 4.
   */
  maxRetries?: number;
  /** First backoff delay in ms; doubles per consecutive failure. Default 500. */
  baseDelayMs?: number;
  /**
   * Upper bound of one computed backoff delay in ms. Default 8000. A server's own delay (`retry-after`,
   * `retry-after-ms`, SSE `retry:`) is honoured instead, up to 60 s.
   */
  maxDelayMs?: number;
}

export interface ClientOptions {
  /**
   * Server root, e.g. `http://127.0.0.1:5001`, `https://openrouter.ai/api/v1`, `https://api.anthropic.com`,
   * `http://127.0.0.1:11434`. A trailing `/`, and for Kobold a trailing `/api` or `/api/v1`, are removed;
   * OpenAI and Anthropic roots without a `/vN` suffix get `/v1`.
   *
   * Several URLs (nodes of a fleet) fail over: on a connection error (refused, reset, DNS, a dropped stream)
   * or a 503, the client moves to the next URL, round-robin, and resumes a stream there as it would on the
   * same URL (Kobold: same genkey and `Last-Event-ID`). The first hop to each other URL is immediate; once
   * every URL has failed, the usual backoff applies. A stream refused by every URL before any answer ends
   * with `ConnectionRefusedError` naming them all.
   */
  baseUrl: string | readonly string[];
  /** Sent as `Authorization: Bearer` (Anthropic: `x-api-key`). Omit for local servers without a key. */
  apiKey?: string | undefined;
  /** Default model for providers that need one (OpenAI-compatible, Anthropic, Ollama). */
  model?: string | undefined;
  /** A `fetch` to use instead of the global one (tests, proxies, custom agents). */
  fetch?: typeof fetch;
  /** Extra headers sent with every request (e.g. OpenRouter's `HTTP-Referer`, `X-Title`). */
  headers?: Record<string, string>;
  retry?: RetryOptions;
  /**
   * A stream that delivers no byte for this many ms is treated as dropped and reconnected (or failed when
   * the provider cannot resume). When left unset, 45000 applies once the server has shown it sends
   * keepalives (our server's `: ping` every 15 s, OpenRouter comments, Anthropic `ping`), because KoboldCpp
   * and plain OpenAI servers can be silent for minutes while a prompt is processed. Set it to arm the
   * heartbeat from the start; 0 disables it.
   */
  heartbeatTimeoutMs?: number;
  /**
   * Kobold only: how often the server sends a heartbeat when it has nothing else to send (our `--heartbeat`).
   * A stream silent for 1.25 of these is looked into for a proxy that holds it back. Default: a third of
   * `heartbeatTimeoutMs` when that is set, else 15000 (our server's default). Unlike `heartbeatTimeoutMs` it
   * never cuts a stream.
   */
  heartbeatIntervalMs?: number;
  /**
   * Resume a dropped stream from the last event id. `'auto'` (default): for Kobold, resume when the server
   * shows it can (it sends `id:` lines or `/api/extra/version` advertises `kindling`), else recover through
   * `/api/extra/generate/check`; for OpenAI-compatible servers resume is off unless `true`, because the
   * `X-Kindling-Stream` header it needs would fail a CORS preflight on third-party hosts.
   */
  resume?: 'auto' | boolean;
  /**
   * Kobold only: how `stream()` reaches the server. `'sse'`: `/api/extra/generate/stream` only. `'poll'`: a
   * sync `/api/v1/generate` while `/api/extra/generate/check` is polled for the text so far (for proxies that
   * buffer event streams). `'auto'` (default): SSE, and polling on a server that has no SSE endpoint or when a
   * proxy is found holding the stream back (then a `degraded` status says so; src/client/README.md has the rule).
   */
  koboldTransport?: 'auto' | 'sse' | 'poll';
  /**
   * Kobold only: ask our server to start each stream with a 16 KiB comment (`X-Kindling-Pad: 1`), which gets a
   * stream past proxies that hold back a response's first bytes. Default false (KoboldCpp ignores it).
   */
  padStream?: boolean;
  /** Interval of `/api/extra/generate/check` polls (polling transport, KoboldCpp recovery), ms. Default 500. */
  pollIntervalMs?: number;
  /**
   * OpenAI-compatible only: send `stream_options: {include_usage: true}` so the final result carries
   * token usage. Default true; turn off for servers that reject unknown fields.
   */
  includeUsage?: boolean;
  /** Anthropic only: `anthropic-version` header. Default `2023-06-01`. */
  anthropicVersion?: string;
  /**
   * Anthropic only: send `anthropic-dangerous-direct-browser-access: true`, needed when a browser calls
   * Anthropic directly. Default: true when `document` exists.
   */
  browserAccess?: boolean;
}

/** A generation request in provider-neutral terms. */
export interface TextRequest {
  /** Raw prompt (Kobold, OpenAI `/v1/completions`, Ollama `/api/generate`). */
  prompt?: string;
  /** Chat turns (OpenAI `/v1/chat/completions`, Anthropic, Ollama `/api/chat`; Kobold renders a transcript). */
  messages?: ChatMessage[];
  /** System text; Kobold sends it as `memory`. */
  system?: string;
  /** Overrides `ClientOptions.model`. */
  model?: string;
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  /** Repetition penalty in Kobold/llama.cpp terms (1 = off). */
  repPen?: number;
  repPenRange?: number;
  seed?: number;
  stop?: string[];
  /** Provider-specific raw fields merged last into the body, e.g. Kobold's `dry_*`, `xtc_*`, `grammar`. */
  extra?: Record<string, unknown>;
  /** Kobold generation key; one is generated when absent. Used for `/check`, abort and resume. */
  genkey?: string;
}

/** Why a generation ended. Providers' own values pass through when they have no neutral equivalent. */
export type StopReason =
  | 'stop'
  | 'length'
  | 'abort'
  | 'error'
  /** The stream was cut, could not be resumed, and `/check` recovery returned what the server had. */
  | 'disconnected'
  | (string & {});

export interface Usage {
  promptTokens?: number;
  completionTokens?: number;
}

export interface GenerationResult {
  text: string;
  stopReason: StopReason;
  usage?: Usage;
  /** The provider's final frame or response body, for debugging. */
  raw?: unknown;
}

/**
 * `degraded`: a proxy held the stream back, so the generation continues by polling (`detail.transport`,
 * `detail.reason`); not an error, the text stays complete.
 */
export type StreamStatus = 'queued' | 'processing' | 'reconnecting' | 'degraded';

export interface StatusDetail {
  /** Queue position when the server reports one (`: queued 2`). */
  queuePosition?: number;
  /** Reconnect attempt number (1-based) and the delay before it. */
  attempt?: number;
  delayMs?: number;
  /** The error that caused the reconnect. */
  error?: Error;
  /** The comment or message the status came from. */
  message?: string;
  /** `degraded`: the transport used from now on. */
  transport?: 'poll';
  /** `degraded`: what was noticed. */
  reason?: string;
}

export type StreamEvent =
  | { type: 'text'; text: string; id?: string }
  | { type: 'status'; status: StreamStatus; detail?: StatusDetail }
  | { type: 'finish'; result: GenerationResult };

export interface StreamCallOptions {
  signal?: AbortSignal;
}

/**
 * A running generation. Iterate it once for events; `result` settles with the final result (iterating is not
 * required to get it). Breaking out of the loop or calling `abort()` cancels the request.
 */
export interface TextStream extends AsyncIterable<StreamEvent> {
  readonly result: Promise<GenerationResult>;
  /** Cancels the generation (for Kobold also on the server). */
  abort(): void;
}

export interface ServerInfo {
  api: ApiKind;
  model?: string;
  /** Server software name and version, e.g. `KoboldCpp` `1.76`. */
  server?: string;
  version?: string;
  /** Kindling version when the server is ours. */
  kindling?: string;
  maxContextLength?: number;
  /** True when dropped streams can be resumed by last event id. */
  resumable?: boolean;
  raw?: unknown;
}

export interface TextClient {
  readonly api: ApiKind;
  stream(request: TextRequest, options?: StreamCallOptions): TextStream;
  generate(request: TextRequest, options?: StreamCallOptions): Promise<GenerationResult>;
  listModels(options?: StreamCallOptions): Promise<string[]>;
  info?(options?: StreamCallOptions): Promise<ServerInfo>;
  countTokens?(text: string, options?: StreamCallOptions): Promise<number>;
  /** Kobold: asks the server to stop the generation with this key. Resolves true when it did. */
  abort?(genkey: string): Promise<boolean>;
}
