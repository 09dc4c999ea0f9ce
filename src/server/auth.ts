import type { FastifyRequest } from 'fastify';
import type { AccessControl } from './access/access-control.ts';
import { identityOf } from './access/request-identity.ts';

/**
 * The keys a request presents: `Authorization: Bearer`, `x-api-key` (Anthropic clients) or `apikey`, and on the
 * WebSocket handshake `?apikey=`. access-control.ts compares them in constant time.
 */
export function presentedKeys(request: FastifyRequest): string[] {
  const header = request.headers;
  const bearer =
    typeof header.authorization === 'string' ? header.authorization.replace(/^Bearer\s+/i, '').trim() : undefined;
  // Browsers cannot set headers on a WebSocket, so its handshake (a real upgrade on the route marked
  // `queryApiKey`) also takes `?apikey=`; no plain HTTP route does, whatever headers it is sent.
  const query = isWebSocketHandshake(request) ? (request.query as { apikey?: unknown } | undefined)?.apikey : undefined;
  return [bearer, header['x-api-key'], header.apikey, query]
    .filter((v): v is string => typeof v === 'string')
    .map((v) => v.trim())
    .filter((v) => v !== '');
}

/** A URL fit for a log: the value of every `apikey` query parameter replaced. */
export function withoutKeys(url: string): string {
  return url.replace(/([?&]apikey=)[^&#]*/gi, '$1[redacted]');
}

/**
 * True when keys protect the server (`--api-keys` or `--password`) and this caller gave none of them. Open
 * routes (KoboldCpp's informational GETs) still answer such a caller, but with nothing of the model or of
 * anyone's activity.
 */
export function isAnonymous(request: FastifyRequest, access: AccessControl): boolean {
  return access.required && identityOf(request) === undefined;
}

function isWebSocketHandshake(request: FastifyRequest): boolean {
  if (request.routeOptions.config?.queryApiKey !== true || request.method !== 'GET') return false;
  const upgrade = request.headers.upgrade;
  return typeof upgrade === 'string' && upgrade.trim().toLowerCase() === 'websocket';
}
