import { isNaturalStop, type StopReason } from '../../core/stop-reason.ts';
import type { OllamaDoneReason } from './wire.ts';

/** Ollama's `done_reason`: natural and requested stops are "stop", running out of room (or an abort) is "length". */
export function ollamaDoneReason(reason: StopReason): OllamaDoneReason {
  return isNaturalStop(reason) ? 'stop' : 'length';
}
