import type { GenerationRequest } from '../../core/generation-request.ts';
import { decodeSampling, num } from '../common/sampler-table.ts';
import { normalizeStopSequences } from '../common/stop-sequences.ts';
import { clientKey } from '../common/stream-key.ts';
import type { KoboldGenerateBody } from './wire.ts';

export interface KoboldDefaults {
  maxLength: number;
}

/** Kobold generate body → the core request. Field semantics follow KoboldCpp (docs/kobold-compatibility.md). */
export function decodeKoboldGenerate(
  body: KoboldGenerateBody | undefined,
  defaults: KoboldDefaults,
): GenerationRequest {
  const b = (body ?? {}) as KoboldGenerateBody & Record<string, unknown>;
  const key = clientKey('genkey', b.genkey);
  const maxLength = num(b, ['max_length']);
  const maxContextLength = num(b, ['max_context_length']);
  return {
    prompt: b.prompt ?? '',
    memory: b.memory ?? '',
    maxTokens: maxLength === undefined ? defaults.maxLength : Math.round(maxLength),
    ...(maxContextLength !== undefined && maxContextLength > 0
      ? { maxContextTokens: Math.round(maxContextLength) }
      : {}),
    parseSpecialTokens: true,
    stopStrings: normalizeStopSequences(b.stop_sequence, 'stop_sequence'),
    trimStop: b.trim_stop ?? true,
    banEos: b.ban_eos_token ?? b.use_default_badwordsids ?? false,
    bypassEos: b.bypass_eos ?? false,
    renderSpecial: b.render_special ?? false,
    sampling: decodeSampling(b),
    logprobs: b.logprobs ? 5 : 0,
    ...(key ? { key } : {}),
    // A client that names its generation can come back for it (check, resume); anonymous ones are abandoned.
    abortOnDisconnect: key === undefined,
  };
}
