import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';
import { membershipOf, type NodeRecord } from '../../fleet/membership.ts';
import { newNodeId } from '../../fleet/node-id.ts';
import type { ServerContext } from '../server-context.ts';
import { nodeLoadOf } from './fleet-node.ts';

const FleetNode = Type.Object({
  id: Type.String({ description: 'Node id, new at each start' }),
  address: Type.String({ description: 'The URL the node listens on' }),
  models: Type.Array(Type.Object({ id: Type.String(), name: Type.String(), context_size: Type.Integer() }), {
    description: 'Its models, as /v1/models names them',
  }),
  slots: Type.Integer({ description: 'Generation slots' }),
  busy: Type.Integer({ description: 'Slots generating now' }),
  queued: Type.Integer({ description: 'Requests waiting for a slot' }),
  load: Type.Number({ description: '(busy + queued) / slots' }),
  started_at: Type.Integer({ description: 'When the node started (epoch ms)' }),
  last_heartbeat_ms: Type.Integer({ description: 'Age of its last heartbeat (0 for the node answering)' }),
});

export const FleetStatus = Type.Object({
  fleet: Type.Boolean({ description: 'false: a single node, without --redis' }),
  node: Type.String({ description: 'The id of the node that answered' }),
  nodes: Type.Array(FleetNode, { description: 'The live nodes, oldest first' }),
});
export type FleetStatus = Static<typeof FleetStatus>;

/**
 * `GET /api/extra/fleet`: the live nodes of the fleet, from any node. Without `--redis` the node answers for
 * itself alone (`fleet: false`), so a client or a load balancer's probe reads one shape either way. While the
 * fleet's Redis is down it is a 503 that names Redis: a partial list would look like a fleet that lost nodes.
 */
export function registerFleetRoute(app: FastifyInstance, context: ServerContext): void {
  // A single node has no membership; its id is still one per start, as a fleet node's is.
  const soloId = newNodeId();
  const startedAt = Date.now();
  app.get(
    '/api/extra/fleet',
    {
      schema: {
        tags: ['Kindling'],
        summary: 'The live nodes of the fleet (--redis), or this node alone',
        response: { 200: FleetStatus },
      },
    },
    async (request): Promise<FleetStatus> => {
      const membership = membershipOf(context.redis);
      const now = Date.now();
      if (!membership) {
        const load = nodeLoadOf(context);
        const self: NodeRecord = {
          id: soloId,
          address: addressOf(request),
          ...load,
          load: loadFigure(load.busy, load.queued, load.slots),
          started_at: startedAt,
          heartbeat_at: now,
        };
        return { fleet: false, node: soloId, nodes: [shown(self, now)] };
      }
      const nodes = await membership.nodes();
      // This node's own figures are the live ones, not its last beat's.
      const self = membership.record(now);
      const listed = nodes.some((node) => node.id === self.id) ? nodes : [...nodes, self];
      return {
        fleet: true,
        node: membership.id,
        nodes: listed.map((node) => shown(node.id === self.id ? self : node, now)),
      };
    },
  );
}

function shown(node: NodeRecord, now: number): FleetStatus['nodes'][number] {
  const { heartbeat_at, ...rest } = node;
  return { ...rest, last_heartbeat_ms: Math.max(0, now - heartbeat_at) };
}

function loadFigure(busy: number, queued: number, slots: number): number {
  return slots > 0 ? Math.round(((busy + queued) / slots) * 100) / 100 : 0;
}

function addressOf(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}`;
}
