import type { FastifyRequest } from 'fastify';
import type { Generation } from '../../scheduler/generation.ts';

/** The generation an HTTP request read, as the request log and the metrics see it. */
export interface ServedGeneration {
  generation: Generation;
  /** The request reattached to a generation an earlier request started (Last-Event-ID, a keyed re-send). */
  resumed: boolean;
  /** The decoded prompt text (memory first, as the context holds it); logged only with `--log-prompts`. */
  prompt: () => string;
}

const served = new WeakMap<FastifyRequest, ServedGeneration>();

/**
 * Records which generation a request served (generation-pipeline.ts calls it). A weak map, not a request
 * decoration: the pipeline stays unaware of what is done with it, and nothing outlives the request.
 */
export function noteServedGeneration(request: FastifyRequest, record: ServedGeneration): void {
  served.set(request, record);
}

export function servedGenerationOf(request: FastifyRequest): ServedGeneration | undefined {
  return served.get(request);
}
