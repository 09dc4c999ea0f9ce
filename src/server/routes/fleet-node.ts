import { servedModelId } from '../../core/model-info.ts';
import type { FleetModel } from '../../core/protocol-services.ts';
import { membershipOf, type NodeLoad } from '../../fleet/membership.ts';
import type { ServerContext } from '../server-context.ts';

/** What this node tells the fleet at each heartbeat: its model as `/v1/models` names it, slots and queue. */
export function nodeLoadOf(context: ServerContext): NodeLoad {
  const { engine, scheduler } = context;
  return {
    models: [{ id: servedModelId(engine.model), name: engine.model.name, context_size: engine.model.contextSize }],
    slots: scheduler.slotCount,
    busy: scheduler.busySlots,
    queued: scheduler.queueLength,
  };
}

/** Each model the live nodes serve, once, this node's first; undefined while Redis is down or before joining. */
export async function fleetModelsOf(context: ServerContext): Promise<FleetModel[] | undefined> {
  const membership = membershipOf(context.redis);
  if (!membership) return undefined;
  const nodes = await membership.nodes().catch(() => undefined);
  if (!nodes) return undefined;
  const models = new Map<string, FleetModel>();
  for (const model of [membership.record(), ...nodes].flatMap((node) => node.models))
    if (!models.has(model.id))
      models.set(model.id, { id: model.id, name: model.name, contextSize: model.context_size });
  return [...models.values()];
}
