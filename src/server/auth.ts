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
  // Browsers cannot set headers on a WebSocket, so the WebSocket route also takes `?apikey=`.
  const query = request.headers.upgrade ? (request.query as { apikey?: string } | undefined)?.apikey : undefined;
  const candidates = [bearer, header['x-api-key'], header.apikey, query].filter(
    (v): v is string => typeof v === 'string' && v !== '',
  );
  const expected = createHash('sha256').update(password).digest();
  return candidates.some((candidate) =>
    timingSafeEqual(createHash('sha256').update(candidate.trim()).digest(), expected),
  );
}
