import type { IncomingMessage } from 'node:http';
import { LogController } from 'fastify';
import type { ServerConfig } from '../../config/server-config.ts';
import { type LogSink, prettyLogStream } from './pretty-log-stream.ts';
import { requestIdOf } from './request-id.ts';

/**
 * Fastify's logging options: pino at `--log-level`, to stdout (or `logStream`) as JSON or pretty lines, request ids
 * from `X-Request-Id`. Fastify's own two lines per request are off: the request log writes one, with more in it.
 */
export function loggingOptions(config: ServerConfig): {
  logger: false | { level: string; stream?: LogSink };
  genReqId: (request: IncomingMessage) => string;
  logController: LogController;
} {
  const sink = config.logStream ?? (config.logFormat === 'pretty' ? process.stdout : undefined);
  const stream = sink && config.logFormat === 'pretty' ? prettyLogStream(sink) : sink;
  return {
    logger: config.logLevel === 'silent' ? false : { level: config.logLevel, ...(stream ? { stream } : {}) },
    genReqId: requestIdOf,
    logController: new LogController({ disableRequestLogging: true }),
  };
}
