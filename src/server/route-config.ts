import '@fastify/swagger';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `false`: reachable without the server password (informational GETs, as in KoboldCpp). */
    auth?: boolean;
    /** An empty or non-JSON body is read as "no body" instead of a 400 (Kobold check/abort). */
    lenientBody?: boolean;
    /** The WebSocket handshake: the key may come as `?apikey=` (browsers cannot set headers on a WebSocket). */
    queryApiKey?: boolean;
  }
}
