import { randomBytes } from 'node:crypto';

/** A node's id in the fleet: new at each start, so a restarted node is never taken for its previous life. */
export function newNodeId(): string {
  return `node-${randomBytes(4).toString('hex')}`;
}
