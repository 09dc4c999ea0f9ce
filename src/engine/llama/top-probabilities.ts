import type { Token } from 'node-llama-cpp';
import type { TokenProbability } from '../engine.ts';

/** The sampled token's log-probability and the `n` most likely tokens, from node-llama-cpp's probability map. */
export function topProbabilities(
  token: number,
  probabilities: Map<Token, number> | undefined,
  n: number,
): { logprob: number; top: TokenProbability[] } {
  if (!probabilities) return { logprob: 0, top: [] };
  const top: TokenProbability[] = [];
  for (const [id, p] of probabilities) {
    if (top.length < n) top.push({ tokenId: id, logprob: Math.log(p) });
    else if (Math.log(p) > (top[top.length - 1] as TokenProbability).logprob)
      top[top.length - 1] = { tokenId: id, logprob: Math.log(p) };
    else continue;
    top.sort((a, b) => b.logprob - a.logprob);
  }
  const chosen = probabilities.get(token as Token);
  return { logprob: chosen !== undefined && chosen > 0 ? Math.log(chosen) : Number.NEGATIVE_INFINITY, top };
}
