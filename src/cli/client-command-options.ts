import { type Command, InvalidArgumentError, Option } from 'commander';
import {
  API_KINDS,
  type ApiKind,
  ConnectionRefusedError,
  createClient,
  type TextClient,
  type TextRequest,
} from '../client/index.ts';
import { createNodeFetch } from '../client-node/node-fetch.ts';

/** Flags shared by the commands that talk to a server (`generate`, `chat`), parsed by commander. */
export interface ClientFlags {
  /** One or more base URLs (several fail over, see `ClientOptions.baseUrl`). */
  url: string[];
  api: ApiKind;
  model?: string;
  key?: string;
  maxTokens?: number;
  temperature?: number;
  seed?: number;
  system?: string;
  verbose?: boolean;
}

export const DEFAULT_SERVER_URL = 'http://127.0.0.1:5001';
const DEFAULT_URLS: string[] = [DEFAULT_SERVER_URL];

export function addClientOptions(command: Command): Command {
  return command
    .addOption(
      new Option(
        '--url <url>',
        'server URL; several (comma-separated or repeated) fail over to the next on a connection error',
      )
        .default(DEFAULT_URLS, DEFAULT_SERVER_URL)
        .argParser(collectUrls),
    )
    .addOption(new Option('--api <api>', 'wire protocol of the server').choices(API_KINDS).default('kobold'))
    .option('--model <name>', 'model name (needed by OpenAI-compatible, Anthropic and Ollama servers)')
    .addOption(new Option('--key <key>', 'API key').env('KINDLING_API_KEY'))
    .option('--max-tokens <n>', 'most tokens to generate', positiveInteger)
    .option('--temperature <t>', 'sampling temperature', nonNegativeNumber)
    .option('--seed <n>', 'sampling seed', integer)
    .option('--system <text>', 'system prompt (Kobold: memory)')
    .option('--verbose', 'report queue position and reconnects on stderr');
}

/** One connection pool for the whole command: HTTP/2 to an HTTPS server that offers it, kept-alive sockets else. */
let nodeFetch: typeof fetch | undefined;

export function clientFromFlags(flags: ClientFlags): TextClient {
  nodeFetch ??= createNodeFetch().fetch;
  return createClient(flags.api, {
    baseUrl: flags.url.length === 1 ? (flags.url[0] as string) : flags.url,
    fetch: nodeFetch,
    ...(flags.key ? { apiKey: flags.key } : {}),
    ...(flags.model ? { model: flags.model } : {}),
  });
}

/** The sampling part of a request, from the flags that were given. */
export function requestFromFlags(flags: ClientFlags): TextRequest {
  const request: TextRequest = {};
  if (flags.maxTokens !== undefined) request.maxTokens = flags.maxTokens;
  if (flags.temperature !== undefined) request.temperature = flags.temperature;
  if (flags.seed !== undefined) request.seed = flags.seed;
  if (flags.system !== undefined) request.system = flags.system;
  return request;
}

/** Writes, then exits once stdout has taken everything (a piped stdout is asynchronous). */
export function exitAfterFlush(code: number): void {
  process.stdout.write('', () => process.exit(code));
}

/** One line on stderr: the SDK's error classes carry a complete message. */
export function errorLine(error: unknown): string {
  if (error instanceof ConnectionRefusedError) {
    // Refused on this machine is almost always "the server is not started yet"; elsewhere it may be any server.
    return error.origins.every(isLoopback)
      ? `kindling: no Kindling server at ${error.origin} — start one with \`npx kindling serve\` (or pass --url)\n`
      : `kindling: no server at ${error.origin} (connection refused): is it running, and is --url right?\n`;
  }
  const message = error instanceof Error ? error.message : String(error);
  return `kindling: ${message.split('\n')[0]}\n`;
}

function isLoopback(origin: string): boolean {
  try {
    const host = new URL(origin).hostname;
    return host === 'localhost' || host === '[::1]' || host.startsWith('127.');
  } catch {
    return false;
  }
}

/**
 * `--url a,b --url c` is `[a, b, c]`. The default is dropped by the first `--url` given: commander passes it
 * as `previous` until then, and the same array object tells it apart from URLs the user gave.
 */
function collectUrls(value: string, previous: string[]): string[] {
  const urls = value
    .split(',')
    .map((url) => url.trim())
    .filter((url) => url !== '');
  if (urls.length === 0) throw new InvalidArgumentError('no URL given');
  return previous === DEFAULT_URLS ? urls : [...previous, ...urls];
}

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('not an integer');
  return n;
}

function positiveInteger(value: string): number {
  const n = integer(value);
  if (n <= 0) throw new InvalidArgumentError('must be at least 1');
  return n;
}

function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('not a non-negative number');
  return n;
}
