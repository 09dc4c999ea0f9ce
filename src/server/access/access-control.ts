import crypto from 'node:crypto';
import { type FSWatcher, readFileSync, watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { FastifyRequest } from 'fastify';
import { type ApiKeyEntry, readApiKeysFile } from '../../config/api-keys-file.ts';
import { KindlingError } from '../../core/kindling-error.ts';
import { DEFAULT_QOS } from '../../scheduler/fair-queue.ts';
import type { GenerationQos } from '../../scheduler/generation.ts';
import { PrincipalQuota } from './principal-quota.ts';
import { type Identity, identityOf, type KnownKey, setIdentity } from './request-identity.ts';

/** Edits arrive as several events (truncate, write, rename); one reload after they settle. */
export const RELOAD_DEBOUNCE_MS = 200;
/** Addresses whose `--ratelimit` windows are kept at most; idle ones are forgotten first. */
const MAX_ADDRESS_WINDOWS = 10_000;

export interface AccessSettings {
  apiKeysPath?: string;
  password?: string;
  /** `--ratelimit`: new generations per minute per address, for callers without an API key (0: none). */
  ratelimitPerMinute?: number;
}

export type AccessLog = (level: 'info' | 'warn', message: string) => void;

/** What the last load of the key file did: for logs and for the operator's status views. */
export interface ReloadResult {
  ok: boolean;
  at: number;
  keys: number;
  message: string;
}

const sha256 = (text: string) => crypto.createHash('sha256').update(text).digest();

/**
 * The live key store, the quota windows and the QoS of every request: built from the flags at start-up (a bad
 * key file stops the start with one line), reloaded on a change of the file (fs.watch, debounced) and on
 * SIGHUP, where a bad file keeps the keys in use and says why. Keys are kept as SHA-256 hashes; a request's
 * keys are compared with every stored one in constant time, with no early exit.
 */
export class AccessControl {
  private keys: KnownKey[] = [];
  private readonly passwordHash: Buffer | undefined;
  private readonly keyQuotas = new Map<string, PrincipalQuota>();
  private readonly addressQuotas = new Map<string, PrincipalQuota>();
  private watcher: FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
  /** The text the keys in use were parsed from. */
  private loadedText: string | undefined;
  /** Where reload outcomes are told; createApp points it at the server's log. */
  log: AccessLog = () => {};
  lastReload: ReloadResult | undefined;

  constructor(
    private readonly settings: AccessSettings,
    private readonly now: () => number = Date.now,
  ) {
    this.passwordHash = settings.password ? sha256(settings.password) : undefined;
    // At start-up a bad file is an error (KindlingError, one line with its JSON path), not a kept old state.
    if (settings.apiKeysPath) this.install(readApiKeysFile(settings.apiKeysPath));
  }

  /** True when protected routes need a key: an `--api-keys` file (even an empty one) or a `--password`. */
  get required(): boolean {
    return Boolean(this.settings.apiKeysPath) || this.passwordHash !== undefined;
  }

  /** The names of the keys in use (never the keys). */
  get keyNames(): string[] {
    return this.keys.map((key) => key.name);
  }

  /**
   * Compares the keys the request presents with every configured key and remembers the result for the request
   * (principal.ts, the QoS, the rate headers read it). Every candidate is compared with every key, the password
   * included, whatever matched before.
   */
  identify(request: FastifyRequest, candidates: readonly string[]): Identity | undefined {
    let found: Identity | undefined;
    const keys = this.keys;
    for (const candidate of candidates) {
      const hash = sha256(candidate);
      for (const key of keys) {
        const same = crypto.timingSafeEqual(hash, key.hash);
        if (same && !found) found = { kind: 'key', key };
      }
      if (this.passwordHash) {
        const same = crypto.timingSafeEqual(hash, this.passwordHash);
        if (same && !found) found = { kind: 'password' };
      }
    }
    setIdentity(request, found);
    return found;
  }

  /**
   * How a request's generation is queued and what it may spend (a fresh quota reservation each call), from the
   * key's entry as it is now: a WebSocket opened before a reload starts each generation under the new settings,
   * and one whose key was removed (or changed) since is refused with 401.
   */
  qosOf(request: FastifyRequest, principal: string): GenerationQos {
    const identity = identityOf(request);
    if (identity?.kind === 'key') {
      const key = this.keys.find((k) => k.name === identity.key.name && k.hash.equals(identity.key.hash));
      if (!key) throw new KindlingError('unauthorized', 'Authentication key is missing or invalid.');
      const quota = this.keyQuotas.get(key.name);
      return {
        priority: key.priority,
        weight: key.weight,
        maxConcurrent: key.maxConcurrent,
        maxQueued: key.maxQueued,
        ...(quota?.limited ? { quota: quota.forRequest() } : {}),
      };
    }
    const quota = this.addressQuota(principal);
    return quota ? { ...DEFAULT_QOS, quota: quota.forRequest() } : DEFAULT_QOS;
  }

  /** `x-ratelimit-*` for a request whose key (or, under `--ratelimit`, whose address) has a quota. */
  rateHeaders(request: FastifyRequest, principal: string): Record<string, string> {
    const identity = identityOf(request);
    const quota = identity?.kind === 'key' ? this.keyQuotas.get(identity.key.name) : this.addressQuotas.get(principal);
    return quota?.limited ? quota.headers() : {};
  }

  /**
   * Reads the key file again. A file that does not parse (or cannot be read) leaves the keys in use as they
   * are, and the log says why; returns whether the new keys are in use.
   */
  reload(reason: string): boolean {
    const path = this.settings.apiKeysPath;
    if (!path) return false;
    try {
      const file = readApiKeysFile(path);
      this.install(file);
      const entries = file.keys;
      this.lastReload = { ok: true, at: this.now(), keys: entries.length, message: `${entries.length} keys` };
      this.log('info', `API keys reloaded (${reason}): ${entries.length} key(s) from ${path}`);
      return true;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.lastReload = { ok: false, at: this.now(), keys: this.keys.length, message };
      this.log('warn', `API keys not reloaded (${reason}), keeping the ${this.keys.length} key(s) in use: ${message}`);
      return false;
    }
  }

  /**
   * Reloads when the file changes. The folder is watched, not the file: editors and config managers replace a
   * file by renaming a new one over it, which a watch on the old file would never see again.
   */
  watch(): void {
    const path = this.settings.apiKeysPath;
    if (!path || this.watcher) return;
    const file = basename(path);
    try {
      this.watcher = watch(dirname(resolve(path)), (_event, name) => {
        if (name !== null && name !== file && !name.startsWith('..')) return;
        clearTimeout(this.debounce);
        this.debounce = setTimeout(() => this.reloadIfChanged(), RELOAD_DEBOUNCE_MS);
        this.debounce.unref();
      });
      this.watcher.unref();
      this.watcher.on('error', (error) => this.log('warn', `API keys: watching ${path} stopped (${error.message})`));
    } catch (error) {
      this.log('warn', `API keys: cannot watch ${path} (${(error as Error).message}); reload with SIGHUP`);
    }
  }

  close(): void {
    clearTimeout(this.debounce);
    this.watcher?.close();
    this.watcher = undefined;
  }

  private reloadIfChanged(): void {
    const path = this.settings.apiKeysPath as string;
    let text: string | undefined;
    try {
      text = readFileSync(path, 'utf8');
    } catch {}
    // A touch, or a write of the same text, changes nothing; an unreadable file goes to reload to be reported.
    if (text !== undefined && text === this.loadedText) return;
    this.reload('file changed');
  }

  private install({ keys: entries, text }: { keys: ApiKeyEntry[]; text: string }): void {
    // The secrets are not kept: only their hashes, which is all a comparison needs.
    this.keys = entries.map(({ key, ...settings }) => ({ ...settings, hash: sha256(key) }));
    this.loadedText = text;
    const names = new Set(entries.map((entry) => entry.name));
    for (const name of this.keyQuotas.keys()) if (!names.has(name)) this.keyQuotas.delete(name);
    for (const entry of entries) {
      const existing = this.keyQuotas.get(entry.name);
      if (existing) existing.setLimits(entry);
      else this.keyQuotas.set(entry.name, new PrincipalQuota(`key "${entry.name}"`, entry, this.now));
    }
  }

  private addressQuota(principal: string): PrincipalQuota | undefined {
    const limit = this.settings.ratelimitPerMinute ?? 0;
    if (limit <= 0) return undefined;
    let quota = this.addressQuotas.get(principal);
    if (!quota) {
      quota = new PrincipalQuota(
        'this address',
        { requestsPerMinute: limit, tokensPerMinute: Number.POSITIVE_INFINITY },
        this.now,
      );
      this.addressQuotas.set(principal, quota);
      if (this.addressQuotas.size > MAX_ADDRESS_WINDOWS) {
        for (const [address, window] of this.addressQuotas) if (window.idle) this.addressQuotas.delete(address);
        // Still full of active addresses: forget the oldest rather than grow without bound.
        for (const address of this.addressQuotas.keys()) {
          if (this.addressQuotas.size <= MAX_ADDRESS_WINDOWS) break;
          this.addressQuotas.delete(address);
        }
      }
    }
    return quota;
  }
}
