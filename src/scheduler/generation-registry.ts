import type { Generation } from './generation.ts';

/** Principals whose last generation is remembered for Kobold's key-less view; the oldest is forgotten first. */
const MAX_REMEMBERED_PRINCIPALS = 1024;

/**
 * The generations a client can still reach, until `graceMs` after they end: by server id from any principal, by
 * client key only from the principal that chose it, and each principal's last started one (Kobold's key-less
 * view).
 */
export class GenerationRegistry {
  /**
   * Client-chosen keys, scoped to the principal that chose them (`principal NUL key`): one principal can
   * neither see nor collide with another's genkey.
   */
  private readonly byKey = new Map<string, Generation>();
  /** Every generation by its server-issued id, which finds it from any principal. */
  private readonly byId = new Map<string, Generation>();
  /** Each principal's most recently started generation: Kobold's key-less "single-user view", per user. */
  private readonly lastByPrincipal = new Map<string, Generation>();
  private lastStarted?: Generation;

  constructor(private readonly graceMs: number) {}

  /**
   * The generation a principal may reach by `key`: its own client key, or any generation's server id.
   * Another principal's key is not found, exactly like an unknown key.
   */
  find(principal: string, key: string): Generation | undefined {
    this.forgetExpired();
    return this.byId.get(key) ?? this.byKey.get(scoped(principal, key));
  }

  /** True when `key` is the server id of `generation` (not a client's key that happens to name it). */
  isServerId(key: string, generation: Generation): boolean {
    return this.byId.get(key) === generation;
  }

  /** Registers a generation by its id, and by its client key when it has one; again is harmless. */
  add(generation: Generation): void {
    if (this.byId.get(generation.id) === generation) return;
    if (generation.clientKey) this.byKey.set(scoped(generation.origin.principal, generation.key), generation);
    this.byId.set(generation.id, generation);
  }

  /** As if the generation had never been registered (it never got to wait or run). */
  remove(generation: Generation): void {
    const key = scoped(generation.origin.principal, generation.key);
    if (generation.clientKey && this.byKey.get(key) === generation) this.byKey.delete(key);
    this.byId.delete(generation.id);
  }

  /** A generation took a slot: it becomes its principal's (and anyone's) last started one. */
  started(generation: Generation): void {
    this.lastStarted = generation;
    const principal = generation.origin.principal;
    this.lastByPrincipal.delete(principal);
    this.lastByPrincipal.set(principal, generation);
    if (this.lastByPrincipal.size > MAX_REMEMBERED_PRINCIPALS) {
      const oldest = this.lastByPrincipal.keys().next().value as string;
      this.lastByPrincipal.delete(oldest);
    }
  }

  /** The principal's most recently started generation, keyed or not. */
  lastStartedBy(principal: string): Generation | undefined {
    return this.lastByPrincipal.get(principal);
  }

  /** The most recently started generation of anyone (for tests and diagnostics, not for client lookups). */
  get last(): Generation | undefined {
    return this.lastStarted;
  }

  /** Every registered generation (a copy: callers may end them while iterating). */
  all(): Generation[] {
    return [...this.byId.values()];
  }

  /** Drops generations that ended more than the grace ago; a principal's last one stays for the key-less view. */
  forgetExpired(): void {
    const cutoff = Date.now() - this.graceMs;
    const expired = (generation: Generation) =>
      generation.status === 'done' &&
      (generation.finishedAt ?? 0) < cutoff &&
      this.lastByPrincipal.get(generation.origin.principal) !== generation;
    for (const [key, generation] of this.byKey) if (expired(generation)) this.byKey.delete(key);
    for (const [id, generation] of this.byId) if (expired(generation)) this.byId.delete(id);
  }
}

function scoped(principal: string, key: string): string {
  return `${principal}\u0000${key}`;
}
