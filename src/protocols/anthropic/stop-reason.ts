import type { StopReason } from '../../core/stop-reason.ts';
import type { AnthropicStopReason } from './wire.ts';

/**
 * Anthropic's `stop_reason` and `stop_sequence`. Only the client's own stop sequences are reported as
 * "stop_sequence" (with the one that matched); the chat template's end-of-turn markers are a natural end of
 * the turn ("end_turn"), as they are for Anthropic's own models. An abort cuts the text short: "max_tokens".
 */
export function anthropicStopReason(
  reason: StopReason,
  stopString: string | undefined,
  clientStops: readonly string[],
): { stop_reason: AnthropicStopReason; stop_sequence: string | null } {
  switch (reason) {
    case 'stop-string':
      if (stopString !== undefined && clientStops.includes(stopString))
        return { stop_reason: 'stop_sequence', stop_sequence: stopString };
      return { stop_reason: 'end_turn', stop_sequence: null };
    case 'eos':
    case 'stop-token':
      return { stop_reason: 'end_turn', stop_sequence: null };
    case 'max-tokens':
    case 'context-full':
    case 'abort':
    case 'error':
      return { stop_reason: 'max_tokens', stop_sequence: null };
  }
}
