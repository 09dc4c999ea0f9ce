import { isNaturalStop, type StopReason } from '../../core/stop-reason.ts';
import type { OpenaiFinishReason } from './wire.ts';

/**
 * OpenAI's finish reasons: every natural or requested stop (EOS, end-of-turn token, stop string) is "stop",
 * running out of room is "length". An abort (`/api/extra/abort`, time limit) is reported as "length" too:
 * the text is cut short, which is what "length" tells a client. Errors never get here (they are errors).
 */
export function openaiFinishReason(reason: StopReason): OpenaiFinishReason {
  return isNaturalStop(reason) ? 'stop' : 'length';
}
