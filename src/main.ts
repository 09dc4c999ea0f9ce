import type { FastifyInstance } from 'fastify';
import { checkModelFile } from './config/model-file.ts';
import type { ServerConfig } from './config/server-config.ts';
import type { ProtocolDescriptor } from './core/protocol.ts';
import type { Engine } from './engine/engine.ts';
import { jsonSchemaToGrammarWithoutModel } from './engine/llama/json-schema-grammar.ts';
import { LlamaEngine } from './engine/llama/llama-engine.ts';
import { UpstreamEngine } from './engine/upstream/upstream-engine.ts';
import { reachableUrl } from './fleet/advertised-url.ts';
import { FleetLog } from './fleet/fleet-log.ts';
import { FleetQueue } from './fleet/fleet-queue.ts';
import { Membership } from './fleet/membership.ts';
import { newNodeId } from './fleet/node-id.ts';
import { RedisLink } from './fleet/redis-link.ts';
import { PROTOCOLS } from './protocols/registry.ts';
import { Scheduler } from './scheduler/scheduler.ts';
import { AccessControl } from './server/access/access-control.ts';
import { createApp } from './server/app.ts';
import { assertCanListen, describeListenError } from './server/listen-error.ts';
import { KindlingMetrics } from './server/observability/kindling-metrics.ts';
import { nodeLoadOf } from './server/routes/fleet-node.ts';
import type { ServerContext } from './server/server-context.ts';
import { connectionCloser } from './server/tls-options.ts';
import { KINDLING_VERSION } from './version.ts';

export interface RunningServer {
  url: string;
  app: FastifyInstance;
  context: ServerContext;
  /**
   * Shutdown: stops admitting work, lets running generations finish for up to `--shutdown-grace`, ends the
   * rest (and everything queued) with a "server shutting down" error, closes every connection, frees the model.
   */
  close(): Promise<void>;
}

/** How long shutdown waits for ended requests to write their last bytes before it closes their connections. */
const FLUSH_MS = 500;

/** The local model (llama.cpp), or with `--upstream` the server that runs it: the only network it touches. */
function createEngine(config: ServerConfig): Promise<Engine> {
  if (config.upstream)
    return UpstreamEngine.connect({
      url: config.upstream.url,
      ...(config.upstream.apiKey ? { apiKey: config.upstream.apiKey } : {}),
      ...(config.upstream.contextSize !== undefined ? { contextSize: config.upstream.contextSize } : {}),
      defaultContextSize: config.contextSize,
      slots: config.parallel,
      jsonSchemaToGrammar: jsonSchemaToGrammarWithoutModel,
    });
  return LlamaEngine.load({
    modelPath: config.modelPath,
    contextSize: config.contextSize,
    slots: config.parallel,
    threads: config.threads,
    gpuLayers: config.gpuLayers,
    placeholder: config.placeholderModel,
  });
}

/** The composition root: config → engine → scheduler → app → listen. */
export async function startServer(
  config: ServerConfig,
  protocols: readonly ProtocolDescriptor[] = PROTOCOLS,
): Promise<RunningServer> {
  if (!config.upstream) checkModelFile(config.modelPath);
  // Before the model loads: a bad key file is one line now, not after a minute of loading.
  const access = new AccessControl(config);
  await assertCanListen(config.host, config.port);
  // Before the model loads too: a fleet node that cannot reach its Redis says so at once.
  const redis = config.redisUrl ? await RedisLink.connect({ url: config.redisUrl }) : undefined;
  const engine = await createEngine(config);
  const metrics = config.metrics ? new KindlingMetrics() : undefined;
  const scheduler = new Scheduler(
    engine,
    {
      maxQueue: config.maxQueue,
      graceMs: config.streamGraceMs,
      resumeWindowMs: config.resumeWindowMs,
      maxGenerationMs: config.maxGenerationMs,
      maxQueueWaitMs: config.maxQueueWaitMs,
      batchAgingMs: config.batchAgingMs,
    },
    metrics,
  );
  // Before the routes are built: they find the node's fleet log through its link (FleetLog.of).
  const nodeId = newNodeId();
  const fleet = redis ? await FleetLog.start(redis, { nodeId, graceMs: config.streamGraceMs }) : undefined;
  // Requests that cannot start here at once wait in the fleet's queue, and a free slot here takes from it.
  const fleetQueue =
    redis && fleet
      ? await FleetQueue.start(redis, fleet, {
          nodeId,
          model: engine.model,
          ...(config.maxQueueWaitMs > 0 ? { jobTtlMs: config.maxQueueWaitMs + 60_000 } : {}),
          batchAgingMs: config.batchAgingMs,
        })
      : undefined;
  if (fleetQueue) scheduler.useSharedQueue(fleetQueue);
  const context: ServerContext = {
    config,
    engine,
    scheduler,
    version: KINDLING_VERSION,
    ...(metrics ? { metrics } : {}),
    jsonSchemaToGrammar: (schema) => engine.jsonSchemaToGrammar(schema),
    access,
    ...(redis ? { redis } : {}),
  };
  const app = await createApp(context, protocols);
  redis?.watch((state, detail) =>
    state === 'ready'
      ? app.log.info({ redis: detail }, 'fleet: Redis reachable')
      : app.log.warn({ redis: detail }, 'fleet: Redis unreachable; reconnecting'),
  );
  const closeConnections = connectionCloser(app.server);
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    await app.close().catch(() => {});
    await engine.dispose();
    await fleetQueue?.close();
    await fleet?.close();
    await redis?.close();
    throw describeListenError(error, config.host, config.port) ?? error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  if (config.placeholderModel) {
    app.log.warn(
      'Serving an UNTRAINED PLACEHOLDER model (random weights): its text is noise. Pass --model <file.gguf> for a real model.',
    );
  }
  const url = `${config.tls ? 'https' : 'http'}://${host}:${port}`;
  // Registered once it listens: the address it advertises is one it answers on.
  const advertised = config.advertiseUrl ?? reachableUrl(url, config.host, port, config.tls !== undefined);
  const membership = redis
    ? new Membership(redis, { id: nodeId, address: advertised, load: () => nodeLoadOf(context) })
    : undefined;
  await membership?.start();
  let closing: Promise<void> | undefined;
  const close = async () => {
    // First: the other nodes stop counting on this one while it drains.
    await membership?.close();
    await scheduler.drain(config.shutdownGraceMs);
    await fleetQueue?.close();
    // The requests shutdown just ended are writing their error (a 503, a stream's error event): give them a
    // moment, then close every connection still open, busy, idle or half-sent, so nothing holds the exit.
    const closed = app.close();
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, FLUSH_MS).unref())]);
    closeConnections();
    await closed;
    // The drained generations' last parts reach Redis, and only then does this node stop beating: a reader on
    // another node sees each one's true end, never a lost-node error.
    await fleet?.close();
    await membership?.release();
    await redis?.close();
    if (scheduler.busySlots === 0) await engine.dispose();
    else app.log.warn('shutdown: a decode did not stop in time; the model is left to the process exit');
  };
  return {
    url,
    app,
    context,
    close() {
      closing ??= close();
      return closing;
    },
  };
}
