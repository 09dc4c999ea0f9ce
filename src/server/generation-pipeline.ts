import type { FastifyReply } from 'fastify';
import { KindlingError } from '../core/kindling-error.ts';
import { namesModel, servedModelId } from '../core/model-info.ts';
import type { GenerationPlan } from '../core/protocol.ts';
import { FleetLog } from '../fleet/fleet-log.ts';
import { membershipOf } from '../fleet/membership.ts';
import type { Scheduler } from '../scheduler/scheduler.ts';
import { readerOutcome } from './generation-outcome.ts';
import { noteServedGeneration } from './observability/served-generation.ts';
import { accessOf, type ServerContext } from './server-context.ts';
import { lastEventId, streamGeneration } from './stream-generation.ts';
import { remoteConflict, submitOrResume } from './submit-or-resume.ts';

/**
 * The one way every protocol's generation route runs: submit (or, for a resumable stream, resume), then stream
 * the log through the protocol's encoder or wait for the end and let the protocol answer. Whoever reads a
 * generation is one of its readers, so the disconnect policy (abort an anonymous generation when its last reader
 * leaves, keep a keyed one for the resume window) is the same on every route.
 */
export async function serveGeneration(
  context: ServerContext,
  plan: GenerationPlan,
  principal: string,
  reply: FastifyReply,
): Promise<unknown> {
  const { scheduler } = context;
  const fleet = FleetLog.of(context.redis);
  if (fleet && plan.model !== undefined && !namesModel(plan.model, context.engine.model))
    await assertServedInFleet(context, plan.model);
  // The key's place in the fair queue, and a fresh reservation of its quota, for this one submission.
  const origin = { principal, protocol: plan.protocol, qos: accessOf(context).qosOf(reply.request, principal) };
  // Joined only if a log line asks for it (`--log-prompts`): a prompt may be megabytes.
  const { memory, prompt: text } = plan.request;
  const prompt = () => (memory ? `${memory}${text}` : text);
  if ('stream' in plan) {
    const { stream } = plan;
    const target = stream.resumable
      ? await submitOrResume(
          scheduler,
          plan.request,
          lastEventId(reply.request.headers['last-event-id']),
          origin,
          fleet,
        )
      : { generation: await submitNew(context, plan, origin), afterId: 0, resumed: false };
    if (!target.resumed) fleet?.publish(target.generation);
    // The request log and metrics count this node's generations; a remote one is counted by its owner.
    if (!target.remote)
      noteServedGeneration(reply.request, { generation: target.generation, resumed: target.resumed, prompt });
    await streamGeneration(context, reply, target.generation, {
      afterId: target.afterId,
      encode: stream.encoder(target.generation, target.afterId),
      ...(stream.contentType ? { contentType: stream.contentType } : {}),
      intervalMs: stream.intervalMs,
    });
    return undefined;
  }
  if (fleet && plan.request.key && !scheduler.find(principal, plan.request.key)) {
    // A key live on another node is the 409 it would be here: one key never runs twice in the fleet.
    const remote = await fleet.find(principal, plan.request.key);
    if (remote && !remote.log.ended) throw remoteConflict(remote, plan.request.key);
  }
  const generation = await submitNew(context, plan, origin);
  fleet?.publish(generation);
  noteServedGeneration(reply.request, { generation, resumed: false, prompt });
  const outcome = await readerOutcome(reply, generation);
  if (!outcome.ok) throw outcome.error;
  return plan.respond(outcome, generation);
}

/**
 * A fleet node asked for a model that is not its own: where the live nodes serve several models, a 404 naming
 * them (and, for one another node serves, where it is), since this node cannot run another model's request.
 */
async function assertServedInFleet(context: ServerContext, requested: string): Promise<void> {
  const nodes =
    (await membershipOf(context.redis)
      ?.nodes()
      .catch(() => undefined)) ?? [];
  const elsewhere = nodes.filter((node) => node.models.some((model) => namesModel(requested, model)));
  const models = [
    ...new Set([servedModelId(context.engine.model), ...nodes.flatMap((node) => node.models.map((m) => m.id))]),
  ];
  // A fleet of one model answers any name, as one node does: the many clients that send a placeholder still work.
  if (models.length === 1) return;
  throw new KindlingError(
    'not_found',
    elsewhere.length > 0
      ? `The model '${requested}' is served by fleet node ${elsewhere.map((node) => `${node.id} (${node.address})`).join(', ')}, not this one (${servedModelId(context.engine.model)}): send the request there.`
      : `The model '${requested}' is not served by any live node of this fleet; the models are: ${models.map((m) => `'${m}'`).join(', ')}.`,
    { field: 'model' },
  );
}

/** A new generation; on a fleet node only while Redis is reachable (the link's 503 otherwise). */
function submitNew(context: ServerContext, plan: GenerationPlan, origin: Parameters<Scheduler['submit']>[1]) {
  FleetLog.of(context.redis)?.assertReachable();
  return context.scheduler.submit(plan.request, origin);
}
