import type { GenerationRequest } from '../core/generation-request.ts';
import type { Engine } from '../engine/engine.ts';

export interface PromptTokens {
  tokens: number[];
  /** Generation budget after capping to the context. */
  maxTokens: number;
  /** Tokens dropped from the front of the prompt (memory is never dropped unless it alone overflows). */
  truncated: number;
}

/** Room always left for the prompt: KoboldCpp keeps `min(ctx-4, 16)` tokens for it, so do we. */
function promptReserve(context: number): number {
  return Math.min(Math.max(context - 4, 1), 16);
}

/**
 * Builds the token sequence for a request: BOS, memory, then as much of the prompt's end as fits
 * `context - maxTokens`. Trimming is token-exact and from the front, as KoboldCpp clients expect.
 */
export function buildPromptTokens(engine: Engine, request: GenerationRequest, serverContext: number): PromptTokens {
  const context = Math.max(8, Math.min(request.maxContextTokens ?? serverContext, serverContext));
  const maxTokens = Math.max(0, Math.min(request.maxTokens, context - promptReserve(context)));
  const bos = engine.tokenize('', { special: true, addBos: true });
  const memory = request.memory
    ? engine.tokenize(request.memory, { special: request.parseSpecialTokens, addBos: false })
    : [];
  const prompt = request.prompt
    ? engine.tokenize(request.prompt, { special: request.parseSpecialTokens, addBos: false })
    : [];
  const budget = Math.max(1, context - maxTokens);
  let head = [...bos, ...memory];
  if (head.length > budget) head = [...bos, ...memory.slice(memory.length - (budget - bos.length))];
  const room = Math.max(0, budget - head.length);
  const kept = prompt.length > room ? prompt.slice(prompt.length - room) : prompt;
  const truncated = prompt.length - kept.length + (bos.length + memory.length - head.length);
  return { tokens: [...head, ...kept], maxTokens, truncated };
}
