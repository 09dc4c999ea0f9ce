import '@fastify/swagger';
import type { KindlingError } from '../core/kindling-error.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `false`: reachable without the server password (informational GETs, as in KoboldCpp). */
    auth?: boolean;
    /** An empty or non-JSON body is read as "no body" instead of a 400 (Kobold check/abort). */
    lenientBody?: boolean;
    /** The WebSocket handshake: the key may come as `?apikey=` (browsers cannot set headers on a WebSocket). */
    queryApiKey?: boolean;
    /** The envelope of the protocol whose route this is (mount-protocols.ts); else the path decides. */
    errorBody?: ErrorBody;
    /** The protocol whose route this is (mount-protocols.ts), for logs and metrics. */
    protocol?: string;
  }
  interface FastifyInstance {
    /** The envelope for a request on a path no protocol route owns (error-envelope.ts), set by createApp. */
    envelopeByPath: (url: string) => ErrorBody;
  }
}

export type ErrorBody = (error: KindlingError, path: string) => Record<string, unknown>;
