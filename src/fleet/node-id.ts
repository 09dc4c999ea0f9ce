import { randomBytes } from 'node:crypto';

/**
 * A node's id in the fleet (`node-` and 8 hex characters), new at every start: a restarted node is a new node,
 * so a record an earlier life left in Redis never passes for a live one. One per server, not per process: tests
 * and embedders run several nodes in one process.
 */
export function newNodeId(): string {
  return `node-${randomBytes(4).toString('hex')}`;
}
