import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';

/**
 * Accepts the key as `Authorization: Bearer`, `x-api-key` (Anthropic clients) or `apikey`, compared in
 * constant time (hashing first makes the lengths equal).
 */
export function isAuthorized(request: FastifyRequest, password: string): boolean {
  const header = request.headers;
  const bearer =
    typeof header.authorization === 'string' ? header.authorization.replace(/^Bearer\s+/i, '').trim() : undefined;
  // Browsers cannot set headers on a WebSocket, so its handshake (a real upgrade on the route marked
  // `queryApiKey`) also takes `?apikey=`; no plain HTTP route does, whatever headers it is sent.
  const query = isWebSocketHandshake(request) ? (request.query as { apikey?: unknown } | undefined)?.apikey : undefined;
  const candidates = [bearer, header['x-api-key'], header.apikey, query].filter(
    (v): v is string => typeof v === 'string' && v !== '',
  );
  const expected = createHash('sha256').update(password).digest();
  return candidates.some((candidate) =>
    timingSafeEqual(createHash('sha256').update(candidate.trim()).digest(), expected),
  );
}

/**
 * True when a password protects the server and this caller did not give it. Open routes (KoboldCpp's
 * informational GETs) still answer such a caller, but with nothing of the model or of anyone's activity.
 */
export function isAnonymous(request: FastifyRequest, password: string | undefined): boolean {
  return Boolean(password) && !isAuthorized(request, password as string);
}

function isWebSocketHandshake(request: FastifyRequest): boolean {
  if (request.routeOptions.config?.queryApiKey !== true || request.method !== 'GET') return false;
  const upgrade = request.headers.upgrade;
  return typeof upgrade === 'string' && upgrade.trim().toLowerCase() === 'websocket';
}
