import type { FastifyInstance } from 'fastify';
import { isAnonymous } from '../auth.ts';
import { accessOf, type ServerContext } from '../server-context.ts';
import { registerSlotsRoute } from './slots-route.ts';

/**
 * `GET /health` and `GET /metrics`, beside the protocols (no protocol's path prefix holds them, so no Kobold client
 * can mistake them for its own).
 *
 * `/health` is open: load balancers and container probes carry no key. It reads two fields of the scheduler and
 * nothing of the engine, so it answers at once however long a prompt the engine is evaluating. The model is loaded
 * before the server listens: while it loads, connections are refused (a probe reads that as down, as it should).
 *
 * `/metrics` is behind the password (or API keys) like the generation routes: it shows who uses the server and
 * how much (key names, token counts), which a `--password` server hides from anonymous callers everywhere else.
 * Prometheus sends the key with `authorization` in its scrape config (docs/operations.md).
 */
export function registerObservabilityRoutes(app: FastifyInstance, context: ServerContext): void {
  const { scheduler, metrics } = context;
  app.get('/health', { schema: { hide: true }, config: { auth: false } }, async (request, reply) => {
    const draining = scheduler.isDraining;
    reply.status(draining ? 503 : 200);
    if (draining) reply.header('retry-after', '5');
    const status = draining ? 'draining' : 'ok';
    // llama-server's shape; the slot figures are activity, which an anonymous caller of a --password server never sees.
    if (isAnonymous(request, accessOf(context))) return { status };
    const busy = scheduler.busySlots;
    return { status, slots_idle: scheduler.slotCount - busy, slots_processing: busy, queued: scheduler.queueLength };
  });
  registerSlotsRoute(app, context);
  if (!metrics) return;
  metrics.watch(scheduler, context.engine, { version: context.version, model: context.engine.model.name });
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    reply.type(metrics.contentType);
    return metrics.text();
  });
}
