import { isNaturalStop, type StopReason } from '../../core/stop-reason.ts';
import type { KoboldFinishReason } from './wire.ts';

/**
 * Kobold's finish reasons. Truthful where KoboldCpp is not: a stop string is "stop" (KoboldCpp says
 * "length", which makes Lite trim the last sentence). Abort stays "length", as KoboldCpp clients expect:
 * the partial text is kept and treated as an incomplete generation.
 */
export function koboldFinishReason(reason: StopReason): KoboldFinishReason {
  if (reason === 'error') return 'error';
  return isNaturalStop(reason) ? 'stop' : 'length';
}

/** `/api/extra/perf` `stop_reason`: -1 invalid, 0 out of tokens (also abort), 1 EOS, 2 custom stopper. */
export function koboldPerfStopReason(reason: StopReason | undefined): number {
  switch (reason) {
    case undefined:
    case 'error':
      return -1;
    case 'eos':
    case 'stop-token':
      return 1;
    case 'stop-string':
      return 2;
    default:
      return 0;
  }
}
