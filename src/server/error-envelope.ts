import type { FastifyRequest } from 'fastify';
import type { KindlingError } from '../core/kindling-error.ts';
import type { ProtocolDescriptor } from '../core/protocol.ts';
import type { ErrorBody } from './route-config.ts';

/** A request's path as protocols see it: no query, no trailing slash (the router ignores both). */
export function routePath(url: string): string {
  return url.split('?')[0]?.replace(/\/+$/, '') || '/';
}

/**
 * Which protocol's envelope answers an error on a path no route of that method matched (a 404, a wrong
 * method): a protocol that has a route on this exact path, else the one with the longest matching prefix.
 */
export function envelopeByPath(protocols: readonly ProtocolDescriptor[], routePaths: ReadonlyMap<string, ErrorBody>) {
  const prefixes = protocols
    .flatMap((protocol) => protocol.pathPrefixes.map((prefix) => ({ prefix, body: protocol.errorBody })))
    .sort((a, b) => b.prefix.length - a.prefix.length);
  return (url: string): ErrorBody => {
    const path = routePath(url);
    const exact = routePaths.get(path);
    if (exact) return exact;
    const match = prefixes.find(({ prefix }) => prefix === '/' || path === prefix || path.startsWith(`${prefix}/`));
    if (!match) throw new Error('no protocol claims "/": the registry needs one');
    return match.body;
  };
}

/** An error as the protocol of this request's route (else of its path) writes it. */
export function errorEnvelope(request: FastifyRequest, error: KindlingError): Record<string, unknown> {
  const body = request.routeOptions.config?.errorBody ?? request.server.envelopeByPath(request.url);
  return body(error, routePath(request.url));
}
