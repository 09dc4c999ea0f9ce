import type { Generation } from './generation.ts';

/** A slot for the admin status route (Scheduler.slotStates). */
export type SlotState =
  | { id: number; state: 'idle' }
  | {
      id: number;
      state: 'prompt' | 'generating';
      principal: string;
      promptTokens: number;
      generatedTokens: number;
      elapsedMs: number;
    };

/** Slot `id` as it is now: idle, or the generation it runs and how far it got. */
export function slotState(id: number, generation: Generation | undefined, now: number): SlotState {
  if (!generation) return { id, state: 'idle' };
  let generated = 0;
  for (const { part } of generation.log.partsAfter(0)) if (part.type === 'text-delta') generated += part.tokens.length;
  return {
    id,
    state: generated > 0 ? 'generating' : 'prompt',
    principal: generation.origin.principal,
    promptTokens: generation.promptTokens.length,
    generatedTokens: generated,
    elapsedMs: now - (generation.startedAt ?? now),
  };
}
