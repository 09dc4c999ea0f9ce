import type { FastifyReply } from 'fastify';

/**
 * Calls `onGone` when the client disconnects before the response finished. Fastify's `request.signal`
 * cannot be used for this: on Node 20 it fires as soon as a POST body has been read.
 */
export function onClientGone(reply: FastifyReply, onGone: () => void): () => void {
  const raw = reply.raw;
  const listener = () => {
    if (!raw.writableFinished) onGone();
  };
  raw.on('close', listener);
  // A client that left while the request was still being prepared (a schema converted, a long prompt
  // tokenized) closed the response before anyone listened: its 'close' will not come again.
  let pending: NodeJS.Immediate | undefined;
  if (raw.destroyed || raw.socket?.destroyed) pending = setImmediate(listener);
  return () => {
    raw.off('close', listener);
    if (pending) clearImmediate(pending);
  };
}
