import type { GenerationView } from '../../core/generation-view.ts';
import type { TokenLogprob } from '../../core/stream-part.ts';

/** Every logprob entry a generation recorded so far (a finished response's, or `/api/extra/last_logprobs`). */
export function generationLogprobs(generation: GenerationView): TokenLogprob[] {
  const out: TokenLogprob[] = [];
  for (const { part } of generation.log.partsAfter(0))
    if (part.type === 'text-delta' && part.logprobs) out.push(...part.logprobs);
  return out;
}
