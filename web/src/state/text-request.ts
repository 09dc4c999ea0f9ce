import type { TextRequest } from '../../../src/client/index.ts';
import type { ConnectionConfig, ProviderDef } from '../api/providers.ts';
import type { Session } from '../model/session.ts';
import type { BuiltPrompt } from '../prompt/build-prompt.ts';

// OpenAI's API takes at most 4 stop strings; the rest are applied client-side by the generation controller.
export const openAiStopLimit = 4;

/** Maps the built prompt and the session's samplers to the SDK's provider-neutral request. */
export function toTextRequest(built: BuiltPrompt, s: Session, config: ConnectionConfig, def: ProviderDef): TextRequest {
  const sm = s.gen.samplers;
  const useMessages = def.api === 'anthropic' || (def.api === 'openai' && config.chatApi);
  const request: TextRequest = {
    maxTokens: s.gen.maxLength,
    temperature: sm.temperature,
    topP: sm.top_p,
    stop: def.api === 'openai' ? built.stopSequences.slice(0, openAiStopLimit) : built.stopSequences,
  };
  if (useMessages) request.messages = built.messages;
  else request.prompt = built.prompt;
  // api.openai.com rejects top_k; OpenRouter, local /v1 servers, Anthropic, Kobold and Ollama accept it.
  if (sm.top_k > 0 && !config.baseUrl.includes('api.openai.com')) request.topK = sm.top_k;
  if (def.api === 'kobold' || def.api === 'ollama') {
    request.minP = sm.min_p;
    request.repPen = sm.rep_pen;
    request.repPenRange = sm.rep_pen_range;
  }
  if (sm.seed >= 0 && def.api !== 'anthropic') request.seed = sm.seed;
  if (def.api === 'kobold') {
    request.extra = {
      max_context_length: s.gen.maxContextLength,
      dry_multiplier: sm.dry_multiplier,
      dry_base: sm.dry_base,
      dry_allowed_length: sm.dry_allowed_length,
      xtc_threshold: sm.xtc_threshold,
      xtc_probability: sm.xtc_probability,
      ...(s.gen.banEos ? { ban_eos_token: true } : {}),
    };
  }
  return request;
}

/** Index where the first stop string starts in `text`, searching only where `delta` could have completed one. */
export function findStop(text: string, deltaLength: number, stops: readonly string[]): number {
  let found = -1;
  for (const stop of stops) {
    const from = Math.max(0, text.length - deltaLength - stop.length);
    const at = text.indexOf(stop, from);
    if (at !== -1 && (found === -1 || at < found)) found = at;
  }
  return found;
}
