import { type Command, InvalidArgumentError, Option } from 'commander';
import { DEMO_MODEL_THREADS, defaultModel } from '../config/default-model.ts';
import { DEFAULT_PORT, defaultServerConfig, defaultThreads, type ServerConfig } from '../config/server-config.ts';

const int =
  (name: string, min = 0) =>
  (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}.`);
    return n;
  };
const intOrAuto = (name: string, min: number) => (value: string) => {
  const n = Number(value);
  if (value === 'auto') return 'auto' as const;
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be auto or an integer ≥ ${min}.`);
  return n;
};
const gpuLayers = intOrAuto('--gpulayers', 0);
const slots = intOrAuto('--parallel', 1);
const port = (value: string) => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw new InvalidArgumentError('--port must be a TCP port from 1 to 65535 (0 picks any free port).');
  }
  return n;
};

/** Which settings the user named: the start line reports a lowered setting only when it was asked for. */
export interface ExplicitSettings {
  contextSize: boolean;
  threads: boolean;
}

interface ServeFlags {
  model?: string;
  port: number;
  host: string;
  contextsize: number;
  threads?: number;
  gpulayers: number | 'auto';
  password?: string;
  apiKeys?: string;
  redis?: string;
  advertise?: string;
  upstream?: string;
  upstreamKey?: string;
  ratelimit: number;
  batchAging: number;
  parallel: number | 'auto';
  queue: number;
  streamGrace: number;
  shutdownGrace: number;
  resumeWindow: number;
  heartbeat: number;
  maxGenSeconds: number;
  queueWaitSeconds: number;
  defaultMaxLength: number;
  maxBodyMb: number;
  cors: string;
  preloadstory?: string;
  logLevel: ServerConfig['logLevel'];
  quiet?: boolean;
  logFormat: ServerConfig['logFormat'];
  logPrompts?: boolean;
  metrics: boolean;
  compress: 'on' | 'off';
  keepaliveSeconds: number;
  tlsCert?: string;
  tlsKey?: string;
}

/**
 * `kindling serve`. Flag names follow KoboldCpp (`--contextsize`, `--threads`, `--gpulayers`, `--port`,
 * `--host`, `--password`) with kebab-case aliases, so existing launch scripts keep working.
 */
export function registerServeCommand(
  program: Command,
  start: (config: ServerConfig, explicit: ExplicitSettings) => Promise<void>,
): void {
  const d = defaultServerConfig('');
  program
    .command('serve')
    .description('Start the text-generation server and the web client')
    .argument('[model]', 'GGUF model file (same as --model)')
    .option('-m, --model <file>', 'GGUF model file (default: the bundled demo model)')
    .option('--port <n>', 'TCP port (0: any free port)', port, DEFAULT_PORT)
    .option('--host <address>', 'address to listen on (0.0.0.0 for the whole network)', d.host)
    .option(
      '--contextsize <n>',
      'context window per slot in tokens (alias --context-size)',
      int('--contextsize', 64),
      d.contextSize,
    )
    .addOption(new Option('--context-size <n>').argParser(int('--context-size', 64)).hideHelp())
    .option(
      '--threads <n>',
      `CPU threads for decoding (default: available cores, ${defaultThreads()} here; 1 for the bundled demo model)`,
      int('--threads', 1),
    )
    .option(
      '--gpulayers <n|auto>',
      'layers to offload to a GPU; auto = as many as fit, 0 = CPU only (alias --gpu-layers)',
      gpuLayers,
      d.gpuLayers,
    )
    .addOption(new Option('--gpu-layers <n|auto>').argParser(gpuLayers).hideHelp())
    .option('--password <key>', 'require this key (Bearer, x-api-key or apikey header) on generation endpoints')
    .addOption(
      new Option(
        '--api-keys <file>',
        'JSON file of API keys with priority, fair-share weight and quotas; reloaded on change and on SIGHUP (see docs/operations.md)',
      ).env('KINDLING_API_KEYS'),
    )
    .option(
      '--ratelimit <n>',
      'new generations per minute per client address for callers without an API key (0: no limit)',
      int('--ratelimit', 0),
      d.ratelimitPerMinute,
    )
    .option(
      '--batch-aging <seconds>',
      "a batch key's request waiting longer than this is queued as interactive",
      int('--batch-aging', 1),
      d.batchAgingMs / 1000,
    )
    .option(
      '--parallel <n|auto>',
      'generation slots decoded together (alias --parallelrequests); auto: 4 when their KV caches fit in half the free memory, else fewer',
      slots,
      d.parallel,
    )
    .addOption(new Option('--parallelrequests <n>').argParser(int('--parallelrequests', 1)).hideHelp())
    .option(
      '--queue <n>',
      'requests that may wait for a slot; beyond that: 503 with Retry-After',
      int('--queue', 0),
      d.maxQueue,
    )
    .option(
      '--stream-grace <seconds>',
      'how long a finished generation stays resumable and checkable',
      int('--stream-grace', 0),
      d.streamGraceMs / 1000,
    )
    .option(
      '--shutdown-grace <seconds>',
      'on SIGTERM/SIGINT, how long running generations may finish before they end with "server shutting down"',
      int('--shutdown-grace', 0),
      d.shutdownGraceMs / 1000,
    )
    .option(
      '--resume-window <seconds>',
      'how long a keyed generation whose client left keeps running for a resume or /check poll (0: abort at once)',
      int('--resume-window', 0),
      d.resumeWindowMs / 1000,
    )
    .option(
      '--heartbeat <seconds>',
      'SSE heartbeat interval on idle streams (0: off)',
      int('--heartbeat', 0),
      d.heartbeatMs / 1000,
    )
    .option(
      '--max-gen-seconds <n>',
      'wall-clock limit of one generation (0: none)',
      int('--max-gen-seconds', 0),
      d.maxGenerationMs / 1000,
    )
    .option(
      '--queue-wait-seconds <n>',
      'longest wait for a slot before a 504 (0: none)',
      int('--queue-wait-seconds', 0),
      d.maxQueueWaitMs / 1000,
    )
    .option(
      '--default-max-length <n>',
      'max_length / max_tokens when a request names none',
      int('--default-max-length', 1),
      d.defaultMaxLength,
    )
    .option(
      '--max-body-mb <n>',
      'largest request body in MiB (larger: 413)',
      int('--max-body-mb', 1),
      d.maxBodyBytes / 1048576,
    )
    .option('--cors <origins>', 'allowed browser origins, comma-separated, or * for any', '*')
    .option('--preloadstory <file>', 'story JSON served at /api/extra/preloadstory')
    .addOption(
      new Option('--log-level <level>', 'log detail (info: one line per HTTP request)')
        .choices(['fatal', 'error', 'warn', 'info', 'debug', 'silent'])
        .default('warn'),
    )
    .addOption(
      new Option('--compress <on|off>', 'compress streams and large JSON for clients that ask (Accept-Encoding)')
        .choices(['on', 'off'])
        .default('on'),
    )
    .option(
      '--keepalive-seconds <n>',
      'close an idle keep-alive connection after this long',
      int('--keepalive-seconds', 1),
      d.keepAliveMs / 1000,
    )
    .addOption(
      new Option('--log-format <format>', 'json: one JSON object a line (pino); pretty: readable lines')
        .choices(['json', 'pretty'])
        .default('json'),
    )
    .option('--log-prompts', 'put the prompt text in request log lines (never done without this flag)')
    .option('--no-metrics', 'no Prometheus /metrics endpoint (and none of the per-token figures behind it)')
    .addOption(
      new Option(
        '--redis <url>',
        'join a fleet of nodes sharing generations and a queue through this Redis (redis://host:port[/db]; see docs/fleet.md)',
      )
        .env('KINDLING_REDIS_URL')
        .argParser(redisUrl),
    )
    .addOption(
      new Option(
        '--advertise <url>',
        "in a fleet, the base URL the others list for this node (default: the address it listens on; behind --host 0.0.0.0, this machine's first network address)",
      )
        .env('KINDLING_ADVERTISE_URL')
        .argParser(httpUrl),
    )
    .addOption(
      new Option(
        '--upstream <url>',
        "drive this OpenAI-compatible server instead of loading a model: llama-server, vLLM, SGLang, TGI, Ollama's /v1 or another Kindling (http://host:port/v1; see docs/fleet.md)",
      )
        .env('KINDLING_UPSTREAM_URL')
        .argParser(upstreamUrl),
    )
    .addOption(
      new Option('--upstream-key <key>', "API key sent to the --upstream server (vLLM's --api-key)").env(
        'KINDLING_UPSTREAM_KEY',
      ),
    )
    .option('--tls-cert <file>', 'serve HTTPS with HTTP/2 (and HTTP/1.1): the certificate (PEM); needs --tls-key')
    .option('--tls-key <file>', "the certificate's private key (PEM); needs --tls-cert")
    .option('--quiet', 'log warnings and errors only')
    .action(
      async (
        modelArgument: string | undefined,
        flags: ServeFlags & { contextSize?: number; gpuLayers?: number | 'auto'; parallelrequests?: number },
        command: Command,
      ) => {
        const explicit = flags.model ?? modelArgument;
        const named = (key: string) => ['cli', 'env'].includes(command.getOptionValueSource(key) ?? '');
        if (flags.upstream && explicit)
          throw new InvalidArgumentError(
            '--upstream and a model file exclude each other: the upstream server runs the model.',
          );
        if (flags.upstreamKey && !flags.upstream)
          throw new InvalidArgumentError('--upstream-key needs --upstream (the server to send it to).');
        const model = explicit
          ? { path: explicit, placeholder: false }
          : flags.upstream
            ? { path: '', placeholder: false }
            : defaultModel();
        const config: ServerConfig = {
          ...defaultServerConfig(model.path),
          placeholderModel: model.placeholder,
          host: flags.host,
          port: flags.port,
          contextSize: flags.contextSize ?? flags.contextsize,
          threads: flags.threads ?? (explicit ? defaultThreads() : DEMO_MODEL_THREADS),
          gpuLayers: flags.gpuLayers ?? flags.gpulayers,
          parallel: flags.parallelrequests ?? flags.parallel,
          maxQueue: flags.queue,
          streamGraceMs: flags.streamGrace * 1000,
          shutdownGraceMs: flags.shutdownGrace * 1000,
          resumeWindowMs: flags.resumeWindow * 1000,
          heartbeatMs: flags.heartbeat * 1000,
          maxGenerationMs: flags.maxGenSeconds * 1000,
          maxQueueWaitMs: flags.queueWaitSeconds * 1000,
          defaultMaxLength: flags.defaultMaxLength,
          maxBodyBytes: flags.maxBodyMb * 1048576,
          corsOrigins:
            flags.cors === '*'
              ? true
              : flags.cors
                  .split(',')
                  .map((s) => s.trim())
                  .filter(Boolean),
          logLevel: flags.quiet ? 'warn' : flags.logLevel,
          logFormat: flags.logFormat,
          logPrompts: flags.logPrompts === true,
          metrics: flags.metrics,
          compress: flags.compress === 'on',
          keepAliveMs: flags.keepaliveSeconds * 1000,
          ratelimitPerMinute: flags.ratelimit,
          batchAgingMs: flags.batchAging * 1000,
          ...(flags.password ? { password: flags.password } : {}),
          ...(flags.apiKeys ? { apiKeysPath: flags.apiKeys } : {}),
          ...(flags.redis ? { redisUrl: flags.redis } : {}),
          ...(flags.advertise ? { advertiseUrl: flags.advertise } : {}),
          ...(flags.upstream
            ? {
                upstream: {
                  url: flags.upstream,
                  ...(flags.upstreamKey ? { apiKey: flags.upstreamKey } : {}),
                  ...(named('contextsize') || named('contextSize')
                    ? { contextSize: flags.contextSize ?? flags.contextsize }
                    : {}),
                },
              }
            : {}),
          ...(flags.preloadstory ? { preloadStoryPath: flags.preloadstory } : {}),
          ...tlsFlags(flags),
        };
        await start(config, {
          contextSize: named('contextsize') || named('contextSize'),
          threads: flags.threads !== undefined,
        });
      },
    );
}

/** `--redis`: a redis:// or rediss:// URL, checked here so a typo is one line at start, not a reconnect loop. */
function redisUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(`"${value}" is not a URL: give redis://host:port[/db].`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:')
    throw new InvalidArgumentError(
      `"${value}" is not a Redis URL: give redis://host:port[/db] (or rediss:// for TLS).`,
    );
  return value;
}

/** `--upstream`: an http(s) base URL (the OpenAI one, usually ending in /v1), without a trailing slash. */
function upstreamUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(
      `"${value}" is not a URL: give the server's OpenAI base, e.g. http://127.0.0.1:8080/v1.`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new InvalidArgumentError(`"${value}" is not an http:// or https:// URL.`);
  return value.replace(/\/+$/, '');
}

/** `--advertise`: an http(s) base URL, without a trailing slash. */
function httpUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(`"${value}" is not a URL: give http://host:port (how other nodes reach this one).`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new InvalidArgumentError(`"${value}" is not an http:// or https:// URL.`);
  return value.replace(/\/+$/, '');
}

/** `--tls-cert` and `--tls-key` come together or not at all. */
function tlsFlags(flags: { tlsCert?: string; tlsKey?: string }): Pick<ServerConfig, 'tls'> {
  if (!flags.tlsCert && !flags.tlsKey) return {};
  if (!flags.tlsCert || !flags.tlsKey)
    throw new InvalidArgumentError('--tls-cert and --tls-key go together: give both, or neither for plain HTTP.');
  return { tls: { certPath: flags.tlsCert, keyPath: flags.tlsKey } };
}
