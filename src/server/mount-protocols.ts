import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Answer } from '../core/answer.ts';
import type { ProtocolDescriptor, ProtocolRoute, RouteInput } from '../core/protocol.ts';
import type { ProtocolServices } from '../core/protocol-services.ts';
import { isAnonymous } from './auth.ts';
import { onClientGone } from './client-gone.ts';
import { serveGeneration } from './generation-pipeline.ts';
import { principalOf } from './principal.ts';
import type { ErrorBody } from './route-config.ts';
import { accessOf, type ServerContext } from './server-context.ts';
import { writeAnswer } from './write-answer.ts';

/**
 * Turns each protocol's route table into Fastify routes: schema and OpenAPI entry, auth and body options, the
 * protocol's error envelope, and one handler shape for all (an info route answers, a generation route goes
 * through the pipeline). Returns which envelope each registered path answers in.
 */
export function mountProtocols(
  app: FastifyInstance,
  context: ServerContext,
  services: ProtocolServices,
  protocols: readonly ProtocolDescriptor[],
): Map<string, ErrorBody> {
  const paths = new Map<string, ErrorBody>();
  for (const protocol of protocols) {
    for (const route of protocol.routes(services)) {
      for (const url of route.paths) {
        paths.set(url, protocol.errorBody);
        app.route({
          method: route.method,
          url,
          schema: {
            tags: [protocol.tag],
            ...(route.summary ? { summary: route.summary } : {}),
            ...(route.body ? { body: route.body } : {}),
            ...(route.hidden ? { hide: true } : {}),
          },
          config: {
            ...(route.open ? { auth: false } : {}),
            ...(route.lenientBody ? { lenientBody: true } : {}),
            errorBody: protocol.errorBody,
            protocol: protocol.name,
          },
          ...(route.maxBodyBytes ? { bodyLimit: Math.min(context.config.maxBodyBytes, route.maxBodyBytes) } : {}),
          handler: (request, reply) => handle(context, route, request, reply),
        });
      }
    }
  }
  return paths;
}

async function handle(context: ServerContext, route: ProtocolRoute, request: FastifyRequest, reply: FastifyReply) {
  const { input, release } = routeInput(context, request, reply);
  try {
    if (route.kind === 'info') return writeAnswer(reply, await route.handle(input));
    const plan = await route.plan(input);
    if (plan instanceof Answer) return writeAnswer(reply, plan);
    return writeAnswer(reply, await serveGeneration(context, plan, input.principal, reply));
  } finally {
    release();
  }
}

/** The request as a protocol sees it; `clientGone` listens to the socket only for a handler that asks. */
function routeInput(context: ServerContext, request: FastifyRequest, reply: FastifyReply) {
  let gone: { controller: AbortController; stop: () => void } | undefined;
  let anonymous: boolean | undefined;
  const input: RouteInput<unknown> = {
    body: request.body,
    params: (request.params ?? {}) as Record<string, string | undefined>,
    headers: request.headers,
    principal: principalOf(request),
    get anonymous() {
      anonymous ??= isAnonymous(request, accessOf(context));
      return anonymous;
    },
    get clientGone() {
      if (!gone) {
        const controller = new AbortController();
        gone = { controller, stop: onClientGone(reply, () => controller.abort()) };
      }
      return gone.controller.signal;
    },
  };
  return { input, release: () => gone?.stop() };
}
