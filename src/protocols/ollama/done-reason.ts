import type { StopReason } from '../../core/stop-reason.ts';
import type { OllamaDoneReason } from './wire.ts';

/** Ollama's `done_reason`: natural and requested stops are "stop", running out of room (or an abort) is "length". */
export function ollamaDoneReason(reason: StopReason): OllamaDoneReason {
  switch (reason) {
    case 'eos':
    case 'stop-token':
    case 'stop-string':
      return 'stop';
    case 'max-tokens':
    case 'context-full':
    case 'abort':
    case 'error':
      return 'length';
  }
}
