import { readFileSync } from 'node:fs';
import { KindlingError } from '../core/kindling-error.ts';

/** One entry of the `--api-keys` file, with its defaults filled in (docs/operations.md, "API keys and quotas"). */
export interface ApiKeyEntry {
  /** What logs, metrics and errors call the key; the principal is `key:<name>`. */
  name: string;
  /** The secret itself: compared in constant time, never logged or shown. */
  key: string;
  priority: 'interactive' | 'batch';
  /** Share of the slots against other keys with queued work. */
  weight: number;
  /** Slots the key may hold at once (Infinity: any). */
  maxConcurrent: number;
  /** Requests the key may have waiting for a slot (Infinity: any, within the server's `--queue`). */
  maxQueued: number;
  /** New generations per rolling minute (Infinity: no limit). */
  requestsPerMinute: number;
  /** Prompt plus generated tokens per rolling minute (Infinity: no limit). */
  tokensPerMinute: number;
  /** May use admin-only routes. */
  admin: boolean;
}

/** An entry as the file writes it. */
interface FileKey {
  name: string;
  key: string;
  priority?: ApiKeyEntry['priority'];
  weight?: number;
  max_concurrent?: number;
  max_queued?: number;
  requests_per_minute?: number;
  tokens_per_minute?: number;
  admin?: boolean;
}

/** The value of every field a key leaves out. */
export const API_KEY_DEFAULTS: Omit<ApiKeyEntry, 'name' | 'key'> = {
  priority: 'interactive',
  weight: 1,
  maxConcurrent: Number.POSITIVE_INFINITY,
  maxQueued: Number.POSITIVE_INFINITY,
  requestsPerMinute: Number.POSITIVE_INFINITY,
  tokensPerMinute: Number.POSITIVE_INFINITY,
  admin: false,
};

/** Shorter keys are refused: a key is a password that every request carries, and a short one can be guessed. */
export const MIN_KEY_LENGTH = 16;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;

const FIELDS: Record<string, (value: unknown) => string | undefined> = {
  name: (v) =>
    typeof v === 'string' && NAME.test(v)
      ? undefined
      : 'must be 1 to 64 letters, digits, "_", ".", "@" or "-", starting with a letter or digit',
  key: (v) =>
    typeof v !== 'string'
      ? 'must be a string'
      : v.length < MIN_KEY_LENGTH
        ? `must be at least ${MIN_KEY_LENGTH} characters`
        : /[\s\p{Cc}]/u.test(v)
          ? 'must not contain spaces or control characters'
          : undefined,
  priority: (v) => (v === 'interactive' || v === 'batch' ? undefined : 'must be "interactive" or "batch"'),
  weight: (v) =>
    typeof v === 'number' && Number.isFinite(v) && v > 0 && v <= 1000
      ? undefined
      : 'must be a positive number (at most 1000)',
  max_concurrent: positiveInteger,
  max_queued: (v) => (Number.isSafeInteger(v) && (v as number) >= 0 ? undefined : 'must be an integer ≥ 0'),
  requests_per_minute: positiveInteger,
  tokens_per_minute: positiveInteger,
  admin: (v) => (typeof v === 'boolean' ? undefined : 'must be true or false'),
};

function positiveInteger(value: unknown): string | undefined {
  return Number.isSafeInteger(value) && (value as number) >= 1 ? undefined : 'must be an integer ≥ 1';
}

/** Thrown with the JSON path of the first problem: `keys[2].weight: must be a positive number`. */
export class ApiKeysFileError extends Error {
  override readonly name = 'ApiKeysFileError';
}

/**
 * Parses the key file's text. Every problem names its JSON path, and no message ever quotes a key (a
 * duplicate is named by the entry it repeats, a JSON syntax error by its line and column).
 */
export function parseApiKeys(text: string): ApiKeyEntry[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ApiKeysFileError(`not valid JSON${syntaxPlace(text, error)}`);
  }
  if (!isRecord(json)) throw new ApiKeysFileError('$: must be an object {"keys": [...]}');
  for (const field of Object.keys(json))
    if (field !== 'keys') throw new ApiKeysFileError(`${field}: unknown field (the file has only "keys")`);
  if (!Array.isArray(json.keys)) throw new ApiKeysFileError('keys: must be an array');
  const names = new Map<string, number>();
  const secrets = new Map<string, number>();
  return json.keys.map((raw, index) => {
    const at = `keys[${index}]`;
    if (!isRecord(raw)) throw new ApiKeysFileError(`${at}: must be an object`);
    for (const field of ['name', 'key']) if (!(field in raw)) throw new ApiKeysFileError(`${at}.${field}: is required`);
    for (const [field, value] of Object.entries(raw)) {
      const check = FIELDS[field];
      if (!check) throw new ApiKeysFileError(`${at}.${field}: unknown field`);
      const problem = check(value);
      if (problem) throw new ApiKeysFileError(`${at}.${field}: ${problem}`);
    }
    // Every field present was checked above, so the entry has the file's shape.
    const entry = raw as unknown as FileKey;
    const { name, key } = entry;
    const sameName = names.get(name);
    if (sameName !== undefined) throw new ApiKeysFileError(`${at}.name: "${name}" is already keys[${sameName}]'s name`);
    const sameKey = secrets.get(key);
    if (sameKey !== undefined) throw new ApiKeysFileError(`${at}.key: the same key as keys[${sameKey}]`);
    names.set(name, index);
    secrets.set(key, index);
    const d = API_KEY_DEFAULTS;
    return {
      name,
      key,
      priority: entry.priority ?? d.priority,
      weight: entry.weight ?? d.weight,
      maxConcurrent: entry.max_concurrent ?? d.maxConcurrent,
      maxQueued: entry.max_queued ?? d.maxQueued,
      requestsPerMinute: entry.requests_per_minute ?? d.requestsPerMinute,
      tokensPerMinute: entry.tokens_per_minute ?? d.tokensPerMinute,
      admin: entry.admin ?? d.admin,
    };
  });
}

/**
 * Reads and parses `--api-keys FILE`; any problem is one line naming the file and the JSON path. The text read
 * comes back too, so a reload can tell a real change from a touch by the very bytes it parsed.
 */
export function readApiKeysFile(path: string): { keys: ApiKeyEntry[]; text: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new KindlingError('bad_input', `--api-keys ${path}: cannot read the file (${code ?? 'unknown error'})`);
  }
  try {
    return { keys: parseApiKeys(text), text };
  } catch (error) {
    if (error instanceof ApiKeysFileError) throw new KindlingError('bad_input', `--api-keys ${path}: ${error.message}`);
    throw error;
  }
}

/** Where JSON.parse stopped, as line and column; never its message, which quotes the text (and so a key). */
function syntaxPlace(text: string, error: unknown): string {
  const position = /position (\d+)/.exec(error instanceof Error ? error.message : '')?.[1];
  if (position === undefined) return '';
  const before = text.slice(0, Number(position));
  const line = before.split('\n').length;
  const column = Number(position) - before.lastIndexOf('\n');
  return ` (line ${line}, column ${column})`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
