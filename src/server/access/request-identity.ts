import type { FastifyRequest } from 'fastify';
import type { ApiKeyEntry } from '../../config/api-keys-file.ts';

/**
 * Who a request's key says it is: an entry of the `--api-keys` file, or the `--password` (one key everyone
 * shares, so it names no one). Undefined: no valid key was presented (or none is configured).
 */
export type Identity = { kind: 'key'; key: KnownKey } | { kind: 'password' };

/** A key of the file as the server keeps it: every setting, and the secret only as its SHA-256 hash. */
export type KnownKey = Omit<ApiKeyEntry, 'key'> & { readonly hash: Buffer };

const identities = new WeakMap<FastifyRequest, Identity | null>();

/** Set once per request by the auth hook (app.ts), which compares the presented keys. */
export function setIdentity(request: FastifyRequest, identity: Identity | undefined): void {
  identities.set(request, identity ?? null);
}

export function identityOf(request: FastifyRequest): Identity | undefined {
  return identities.get(request) ?? undefined;
}

/** The key's name for logs and metrics (never the key itself); undefined for the password and for no key. */
export function keyNameOf(request: FastifyRequest): string | undefined {
  const identity = identityOf(request);
  return identity?.kind === 'key' ? identity.key.name : undefined;
}

/** An `admin: true` key, or the `--password` (the operator's one key); never a caller without a key. */
export function isAdmin(request: FastifyRequest): boolean {
  const identity = identityOf(request);
  return identity?.kind === 'password' || (identity?.kind === 'key' && identity.key.admin);
}
