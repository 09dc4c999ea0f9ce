import type { GenerationRequest } from '../core/generation-request.ts';
import { KindlingError } from '../core/kindling-error.ts';
import { DEFAULT_QOS } from './fair-queue.ts';
import type { Generation, GenerationOrigin } from './generation.ts';

/** Protocol names as a user reads them, for the message of a cross-protocol key conflict. */
const PROTOCOL_NAMES: Record<string, string> = {
  kobold: 'KoboldAI',
  'openai-chat': 'OpenAI chat',
  'openai-completion': 'OpenAI completion',
  anthropic: 'Anthropic',
  ollama: 'Ollama',
};

/** What admission reads of the scheduler at the moment a request arrives. */
export interface AdmissionState {
  draining: boolean;
  /** The live or remembered generation the request's key names, if any. */
  existing: Generation | undefined;
  /** True when the request's key is `existing`'s server id rather than a client key. */
  keyIsServerId: boolean;
  freeSlots: number;
  running: number;
  queueLength: number;
  maxQueue: number;
  runningOf(principal: string): number;
  queuedOf(principal: string): number;
}

/**
 * Refuses a request that cannot be admitted, with the error its client can act on: the server drains, its key
 * names a live generation (or another's server id), its principal has `max_queued` waiting, its quota is spent,
 * or the queue is full.
 */
export function assertAdmissible(state: AdmissionState, request: GenerationRequest, origin: GenerationOrigin): void {
  if (state.draining) throw KindlingError.shuttingDown('not accepting new generations; retry once it is back');
  const { key } = request;
  const existing = state.existing;
  if (key && existing && existing.status !== 'done') {
    const other = existing.origin.protocol !== origin.protocol;
    throw new KindlingError(
      'conflict',
      other
        ? `The key "${key}" names a running ${PROTOCOL_NAMES[existing.origin.protocol] ?? existing.origin.protocol} generation; a stream resumes only through the protocol that started it. Use a new key.`
        : `A generation with key "${key}" is still running; resume it with Last-Event-ID (or re-send the same request), or use a new key.`,
    );
  }
  if (key && existing && state.keyIsServerId) {
    // A server id names one generation for its whole life; reusing it for another would make it ambiguous.
    throw new KindlingError(
      'conflict',
      `"${key}" is the server id of an existing generation: resume it with Last-Event-ID, or use a new key.`,
    );
  }
  const qos = origin.qos ?? DEFAULT_QOS;
  const mustWait = state.freeSlots <= 0 || state.runningOf(origin.principal) >= qos.maxConcurrent;
  const queued = state.queuedOf(origin.principal);
  if (mustWait && queued >= qos.maxQueued) {
    throw new KindlingError(
      'rate_limited',
      `This key already has ${queued} request${queued === 1 ? '' : 's'} waiting (its max_queued); try again once one has started.`,
      { retryAfterSeconds: 1 },
    );
  }
  origin.qos?.quota?.check();
  if (state.freeSlots <= 0 && state.queueLength >= state.maxQueue) {
    throw new KindlingError(
      'queue_full',
      `Server is busy: ${state.running} generations running and ${state.queueLength} waiting. Try again shortly.`,
      { retryAfterSeconds: 2 },
    );
  }
}
