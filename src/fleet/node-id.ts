import { randomBytes } from 'node:crypto';

/**
 * This process's id in the fleet (`node-` and 8 hex characters), new at every start: a restarted node is a new
 * node, so a record an earlier life left in Redis never passes for a live one.
 */
export const NODE_ID = `node-${randomBytes(4).toString('hex')}`;
