import type { Http2SecureServer } from 'node:http2';
import compress from '@fastify/compress';
import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import websocket from '@fastify/websocket';
import Fastify, { type FastifyHttp2SecureOptions, type FastifyInstance, type FastifyRequest } from 'fastify';
import { KindlingError } from '../core/kindling-error.ts';
import type { ProtocolDescriptor } from '../core/protocol.ts';
import { PROTOCOLS } from '../protocols/registry.ts';
import { presentedKeys, withoutKeys } from './auth.ts';
import { handleClientError } from './client-error.ts';
import { envelopeByPath, errorEnvelope } from './error-envelope.ts';
import { BLANK_BODY, readJsonBody } from './json-body.ts';
import { fromFastifyError } from './request-errors.ts';
import { tlsServerOptions } from './tls-options.ts';
import './route-config.ts';
import { mountProtocols } from './mount-protocols.ts';
import { loggingOptions } from './observability/logging-options.ts';
import { registerObservabilityRoutes } from './observability/observability-routes.ts';
import { installRequestLog } from './observability/request-log.ts';
import { principalOf } from './principal.ts';
import { protocolServices } from './protocol-services.ts';
import { registerDocsRoutes } from './routes/docs.ts';
import { registerFleetRoute } from './routes/fleet.ts';
import { registerKoboldWsRoute } from './routes/kobold-ws.ts';
import { registerWebRoutes } from './routes/web.ts';
import { accessOf, type ServerContext } from './server-context.ts';

/** Headers KoboldCpp allows cross-origin; clients (Lite, SillyTavern) send these. */
const ALLOWED_HEADERS = [
  'Accept',
  'Content-Type',
  'Content-Length',
  'Cache-Control',
  'Accept-Encoding',
  'X-CSRF-Token',
  'Client-Agent',
  'X-Fields',
  'Authorization',
  'X-Requested-With',
  'X-HTTP-Method-Override',
  'apikey',
  'genkey',
  'x-api-key',
  'anthropic-version',
  'anthropic-beta',
  'anthropic-dangerous-direct-browser-access',
  'Last-Event-ID',
  'Idempotency-Key',
  'X-Kindling-Stream',
  'X-Kindling-Pad',
  'OpenAI-Organization',
  'OpenAI-Project',
  'X-Stainless-Lang',
  'X-Stainless-Package-Version',
  'X-Stainless-OS',
  'X-Stainless-Arch',
  'X-Stainless-Runtime',
  'X-Stainless-Runtime-Version',
  'X-Stainless-Retry-Count',
  'X-Stainless-Timeout',
  'User-Agent',
  'X-Request-Id',
];

export interface RegisteredRoute {
  method: string;
  url: string;
  /** `false`: reachable without the password (see route-config.ts). */
  auth: boolean;
}

const routeTables = new WeakMap<FastifyInstance, RegisteredRoute[]>();

/** Every route the app registered (HEAD twins included), so a test can sweep them all, new ones too. */
export function registeredRoutes(app: FastifyInstance): readonly RegisteredRoute[] {
  return routeTables.get(app) ?? [];
}

/**
 * The HTTP shell: body parsing, CORS, auth, errors in each protocol's envelope, then the route table, built
 * from the protocol descriptors (src/protocols/registry.ts) and the server's own pages (docs, web client) and
 * WebSocket.
 */
export async function createApp(
  context: ServerContext,
  protocols: readonly ProtocolDescriptor[] = PROTOCOLS,
): Promise<FastifyInstance> {
  const { config } = context;
  const access = accessOf(context);
  const logging = loggingOptions(config);
  const options = {
    ...logging,
    // A logged request's URL never shows a `?apikey=` (auth.ts `withoutKeys`).
    logger: logging.logger && {
      ...logging.logger,
      serializers: { req: (request: FastifyRequest) => requestForLog(request) },
    },
    bodyLimit: config.maxBodyBytes,
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true },
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    clientErrorHandler: handleClientError,
    // An idle keep-alive connection is closed past this (a stream is never idle: it is a response in progress).
    keepAliveTimeout: config.keepAliveMs,
  };
  // With TLS: HTTPS, HTTP/2 and HTTP/1.1 by ALPN. The routes only use what both request kinds share, so the rest
  // of the server types the instance as HTTP/1's.
  const app = (config.tls
    ? // The logger's request serializer is typed for HTTP/1 requests; it reads only what HTTP/2 requests share.
      Fastify({
        ...options,
        ...tlsServerOptions(config.tls),
      } as unknown as FastifyHttp2SecureOptions<Http2SecureServer>)
    : Fastify(options)) as unknown as FastifyInstance;

  const routes: RegisteredRoute[] = [];
  routeTables.set(app, routes);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat())
      routes.push({ method, url: route.url, auth: route.config?.auth !== false });
  });
  // Before the password check, so that a refused request is logged and counted too.
  installRequestLog(app, context);

  // Kobold clients send JSON with any content type (or none); an empty body means "no body".
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', async (request: FastifyRequest, payload: AsyncIterable<Buffer>) => {
    const lenient = request.routeOptions.config?.lenientBody === true;
    const declared = Number(request.headers['content-length']);
    const limit = request.routeOptions.bodyLimit ?? config.maxBodyBytes;
    let value: unknown;
    try {
      value = await readJsonBody(payload, limit, Number.isFinite(declared) ? declared : undefined);
    } catch (error) {
      if (error instanceof KindlingError) throw error;
      if (lenient) return {};
      throw new KindlingError(
        'bad_input',
        `Error parsing input: the body is not valid JSON (${(error as Error).message}).`,
      );
    }
    return value === BLANK_BODY ? (lenient ? {} : undefined) : value;
  });

  await app.register(cors, {
    origin: config.corsOrigins,
    methods: ['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'HEAD'],
    allowedHeaders: ALLOWED_HEADERS,
    exposedHeaders: ['x-kindling-generation', 'retry-after', 'x-request-id', ...RATE_LIMIT_HEADERS],
    optionsSuccessStatus: 200,
    strictPreflight: false,
  });
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'Kindling API',
        version: context.version,
        description: 'KoboldAI/KoboldCpp, OpenAI, Anthropic and Ollama compatible text generation.',
      },
    },
  });

  // JSON bodies over 1 KB for clients that ask; streams compress themselves batch by batch (sse/stream-encoding.ts)
  // because the plugin cannot flush after each event.
  if (config.compress) await app.register(compress, { threshold: 1024, encodings: ['gzip', 'br', 'deflate'] });
  await app.register(websocket, {
    options: {
      maxPayload: config.maxBodyBytes,
      // permessage-deflate for clients that offer it, with a 4 KB window for what we send so a connection's deflate
      // state stays small (the client's window is its own: requiring a smaller one would refuse browsers that do not
      // offer to shrink it); maxPayload bounds what a compressed message may inflate to.
      perMessageDeflate: config.compress
        ? {
            zlibDeflateOptions: { level: 6, memLevel: 5 },
            serverMaxWindowBits: 12,
            threshold: 256,
            concurrencyLimit: 4,
          }
        : false,
    },
  });

  access.log = (level, message) => app.log[level](message);
  access.watch();
  app.addHook('onClose', async () => access.close());
  app.addHook('onRequest', async (request) => {
    if (request.method === 'OPTIONS') return;
    // On every route, open ones too: a keyed caller is its key's principal wherever it goes.
    const identity = access.identify(request, presentedKeys(request));
    if (!access.required || identity || request.routeOptions.config?.auth === false) return;
    if (!request.routeOptions.url) return; // unknown route: the 404 handler answers
    throw new KindlingError('unauthorized', 'Authentication key is missing or invalid.');
  });
  app.addHook('preValidation', async (request) => {
    if (request.body === undefined && request.routeOptions.config?.lenientBody) request.body = {};
  });
  app.addHook('onSend', async (request, reply, payload) => {
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    reply.headers(access.rateHeaders(request, principalOf(request)));
    // Shutting down: no connection is kept for a next request this server will not be there to answer.
    // (HTTP/2 has no such header: its shutdown is the session's GOAWAY when the server closes.)
    if (context.scheduler.isDraining && request.raw.httpVersionMajor < 2) reply.header('connection', 'close');
    return payload;
  });

  app.setErrorHandler((raw, request, reply) => {
    const error = fromFastifyError(raw);
    if (error.code === 'payload_too_large') {
      Object.assign(error, {
        message: payloadTooBigMessage(request.routeOptions.bodyLimit ?? config.maxBodyBytes),
      });
    }
    if (error.status >= 500) request.log.error({ err: raw }, 'request failed');
    if (error.details.retryAfterSeconds) reply.header('retry-after', String(error.details.retryAfterSeconds));
    reply.status(error.status).send(errorEnvelope(request, error));
  });
  app.setNotFoundHandler((request, reply) => {
    const error = new KindlingError(
      'not_found',
      `${request.method} ${request.url.split('?')[0]} is not an endpoint of this server. See /api for the list.`,
    );
    reply.status(404).send(errorEnvelope(request, error));
  });

  const services = protocolServices(context);
  const routePaths = mountProtocols(app, context, services, protocols);
  app.decorate('envelopeByPath', envelopeByPath(protocols, routePaths));
  registerKoboldWsRoute(app, context, services);
  registerObservabilityRoutes(app, context);
  registerDocsRoutes(app, context);
  registerFleetRoute(app, context);
  registerWebRoutes(app, context);
  return app;
}

/** Fastify's request line, with the WebSocket's `?apikey=` taken out of the URL: a key is never logged. */
function requestForLog(request: FastifyRequest) {
  return {
    method: request.method,
    url: withoutKeys(request.url),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort ?? 0,
  };
}

/** OpenAI's rate-limit headers, sent on every response of a request with a quota (principal-quota.ts). */
const RATE_LIMIT_HEADERS = ['requests', 'tokens'].flatMap((unit) =>
  ['limit', 'remaining', 'reset'].map((part) => `x-ratelimit-${part}-${unit}`),
);

/** KoboldCpp's wording, with the limit of the route that refused the body (some routes allow less). */
function payloadTooBigMessage(limitBytes: number): string {
  const size =
    limitBytes >= 1048576 ? `${Math.round(limitBytes / 1048576)}MB` : `${Math.max(1, Math.round(limitBytes / 1024))}KB`;
  return `Payload is too big. Max payload size is ${size}.`;
}
