import type { FastifyRequest } from 'fastify';
import { keyNameOf } from './access/request-identity.ts';

/**
 * The principal a request acts for: whose generations its keys can reach, whose share of the queue it takes
 * and whose quota it spends. Two forms, and only these two:
 * - `key:<name>`: the request presented a valid API key of the `--api-keys` file; `<name>` is the key's `name`
 *   (never the key). Logs and metrics label such a request with `<name>`.
 * - `addr:<ip>`: no API key (none configured, none presented on an open route, or the `--password`, which
 *   everyone shares and so names no one): the client's address, as the socket reports it (no proxy headers are
 *   trusted). Logs and metrics label such a request `anonymous`. IPv4 clients seen through a dual-stack socket
 *   (`::ffff:a.b.c.d`) are the same principal as `a.b.c.d`.
 */
export function principalOf(request: FastifyRequest): string {
  const name = keyNameOf(request);
  if (name !== undefined) return `key:${name}`;
  const address = request.socket?.remoteAddress ?? request.ip ?? 'unknown';
  return `addr:${address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '')}`;
}
