import { servedModelId } from '../../core/model-info.ts';
import type { NodeLoad } from '../../fleet/membership.ts';
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
