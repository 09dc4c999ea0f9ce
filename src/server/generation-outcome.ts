import type { FastifyReply } from 'fastify';
import type { FinishedGeneration } from '../core/generation-view.ts';
import type { KindlingError } from '../core/kindling-error.ts';
import type { FinishPart } from '../core/stream-part.ts';
import { generationLogprobs } from '../protocols/common/generation-logprobs.ts';
import type { Generation } from '../scheduler/generation.ts';
import { onClientGone } from './client-gone.ts';

export type GenerationOutcome = ({ ok: true } & FinishedGeneration) | { ok: false; text: string; error: KindlingError };

/** Waits for a generation to end and gathers what a non-streaming response needs. */
async function generationOutcome(generation: Generation): Promise<GenerationOutcome> {
  const log = generation.log;
  while (!log.ended) await log.waitForPartAfter(log.lastId);
  const last = log.last;
  if (last?.type === 'error') return { ok: false, text: log.text, error: last.error };
  return { ok: true, text: log.text, finish: last as FinishPart, logprobs: generationLogprobs(generation) };
}

/**
 * A non-streaming request waits for its generation as one of its readers: if the client leaves first, an
 * anonymous generation is aborted at once and a keyed one keeps running for the resume window (a `/check`
 * poll can still collect it).
 */
export async function readerOutcome(reply: FastifyReply, generation: Generation): Promise<GenerationOutcome> {
  const release = generation.attachReader();
  const stop = onClientGone(reply, release);
  try {
    return await generationOutcome(generation);
  } finally {
    stop();
    release();
  }
}
