import { availableParallelism } from 'node:os';
import { DEFAULT_SCHEDULER_OPTIONS } from '../scheduler/scheduler-options.ts';

/** Everything the server needs, validated once at start-up. */
export interface ServerConfig {
  modelPath: string;
  /** The model is our random-weight placeholder: every surface says its text is noise. */
  placeholderModel: boolean;
  host: string;
  port: number;
  /** Context window per generation slot. */
  contextSize: number;
  threads: number;
  gpuLayers: number | 'auto';
  password?: string;
  /** `--api-keys` / `KINDLING_API_KEYS`: the JSON key file (src/config/api-keys-file.ts), reloaded on change. */
  apiKeysPath?: string;
  /** `--ratelimit`: new generations per minute per address for callers without an API key (0: no limit). */
  ratelimitPerMinute: number;
  /** A batch key's request waiting longer than this is queued as interactive. */
  batchAgingMs: number;
  /** Generation slots decoded together in shared batches; `'auto'` picks from the model and free memory. */
  parallel: number | 'auto';
  /** Requests that may wait beyond the busy slots before new ones get 503. */
  maxQueue: number;
  /** How long a finished generation stays resumable and checkable by key. */
  streamGraceMs: number;
  /**
   * How long a keyed generation whose readers all left (stream, sync request, WebSocket subscriber) keeps
   * running for a resume or a `/check` poll before it is aborted and its slot freed (0: at once).
   */
  resumeWindowMs: number;
  /** Interval of `: ping` comments on idle SSE streams. */
  heartbeatMs: number;
  /** Wall-clock limit of one generation (0: none). */
  maxGenerationMs: number;
  /** Longest wait for a slot (0: none). */
  maxQueueWaitMs: number;
  /** `max_length` when a request names none. */
  defaultMaxLength: number;
  maxBodyBytes: number;
  /** `true`: any origin (KoboldCpp's behaviour, which hosted clients like KoboldAI Lite need); or a list. */
  corsOrigins: true | string[];
  preloadStoryPath?: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'silent';
  /** `json`: one pino JSON object a line (for log collectors); `pretty`: one readable line each, for a terminal. */
  logFormat: 'json' | 'pretty';
  /** Request lines carry the prompt text. Off by default: prompts are the users' private writing. */
  logPrompts: boolean;
  /**
   * Where log lines go (default: stdout). Not a flag: tests and benches capture or discard the lines with it.
   * Each call gets one whole line, newline included.
   */
  logStream?: { write(line: string): unknown };
  /** Prometheus `/metrics` and the per-token figures behind it (off: no route, no per-token work). */
  metrics: boolean;
  /** A slow reader blocked longer than this is cut; its generation stays resumable. */
  stalledReaderMs: number;
  /** On SIGTERM/SIGINT, how long running generations may go on before they are cut ("server shutting down"). */
  shutdownGraceMs: number;
  /**
   * Compress what a client asks to have compressed (`Accept-Encoding`): streams flushed batch by batch, JSON
   * bodies over 1 KB, WebSocket messages (permessage-deflate). Off: plain bytes for everyone.
   */
  compress: boolean;
  /** How long an idle keep-alive connection is kept open for the client's next request. */
  keepAliveMs: number;
  /**
   * `--redis` / `KINDLING_REDIS_URL`: this node joins a fleet that shares generations, aborts and a queue through
   * this Redis. Absent: everything stays in this process, and no Redis is touched.
   */
  redisUrl?: string;
  /**
   * `--advertise` / `KINDLING_ADVERTISE_URL`: the base URL other nodes and `kindling fleet status` list for this
   * node. Absent: the address it listens on, or, behind a wildcard host (0.0.0.0, ::), the machine's first
   * non-loopback address.
   */
  advertiseUrl?: string;
  /**
   * `--upstream` / `KINDLING_UPSTREAM_URL`: no model is loaded; generations stream from this OpenAI-compatible
   * server instead (llama-server, vLLM, SGLang, TGI, Ollama's `/v1`, another Kindling). `contextSize` is set
   * only when `--contextsize` was given (it then caps the upstream's); `apiKey` is sent as a Bearer token.
   */
  upstream?: { url: string; apiKey?: string; contextSize?: number };
  /** HTTPS with HTTP/2 (and HTTP/1.1) from a certificate and its key (`--tls-cert`, `--tls-key`). */
  tls?: { certPath: string; keyPath: string };
}

export const DEFAULT_PORT = 5001;

export function defaultThreads(): number {
  return Math.max(1, availableParallelism());
}

export function defaultServerConfig(modelPath: string): ServerConfig {
  return {
    modelPath,
    placeholderModel: false,
    host: '127.0.0.1',
    port: DEFAULT_PORT,
    contextSize: 4096,
    threads: defaultThreads(),
    gpuLayers: 'auto',
    parallel: 'auto',
    maxQueue: DEFAULT_SCHEDULER_OPTIONS.maxQueue,
    streamGraceMs: DEFAULT_SCHEDULER_OPTIONS.graceMs,
    resumeWindowMs: DEFAULT_SCHEDULER_OPTIONS.resumeWindowMs,
    heartbeatMs: 15_000,
    maxGenerationMs: DEFAULT_SCHEDULER_OPTIONS.maxGenerationMs,
    maxQueueWaitMs: DEFAULT_SCHEDULER_OPTIONS.maxQueueWaitMs,
    ratelimitPerMinute: 0,
    batchAgingMs: DEFAULT_SCHEDULER_OPTIONS.batchAgingMs,
    defaultMaxLength: 512,
    maxBodyBytes: 32 * 1024 * 1024,
    corsOrigins: true,
    logLevel: 'warn',
    logFormat: 'json',
    logPrompts: false,
    metrics: true,
    stalledReaderMs: 120_000,
    shutdownGraceMs: 10_000,
    compress: true,
    keepAliveMs: 72_000,
  };
}
