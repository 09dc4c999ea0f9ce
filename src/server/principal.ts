import type { FastifyRequest } from 'fastify';

/**
 * The principal a request acts for: whose generations its keys can reach and whose rate limit it spends.
 * API keys will name principals once they exist; until then (and with `--password` alone, where everyone
 * shares one key) it is the client's address, as the socket reports it (no proxy headers are trusted).
 * IPv4 clients seen through a dual-stack socket (`::ffff:a.b.c.d`) are the same principal as `a.b.c.d`.
 */
export function principalOf(request: FastifyRequest): string {
  const address = request.socket?.remoteAddress ?? request.ip ?? 'unknown';
  return `addr:${address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '')}`;
}
