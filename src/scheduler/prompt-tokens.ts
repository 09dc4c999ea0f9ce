import type { GenerationRequest } from '../core/generation-request.ts';
import type { Engine } from '../engine/engine.ts';
import { type TailTokens, tokenizeTail, tokenizeTailAsync } from '../engine/token-cuts.ts';

export interface PromptTokens {
  tokens: number[];
  /**
   * Generation budget after capping to the context: the one place `max_length` is capped, so the runner and the
   * engine can take `tokens.length + maxTokens <= context` as given.
   */
  maxTokens: number;
  /**
   * Tokens dropped from the front of the prompt (memory is never dropped unless it alone overflows). Exact when
   * the texts were tokenized whole; for a text only tokenized from its tail, the part never tokenized is
   * counted at the tail's own tokens per character.
   */
  truncated: number;
  /**
   * The prompt as text (memory then prompt), untokenized and untrimmed, where the engine cannot tokenize it (an
   * upstream server without a tokenizer route): `tokens` is then empty and the upstream trims or refuses it.
   */
  text?: string;
}

/** Room always left for the prompt: KoboldCpp keeps `min(ctx-4, 16)` tokens for it, so do we. */
function promptReserve(context: number): number {
  return Math.min(Math.max(context - 4, 1), 16);
}

const NO_TOKENS: TailTokens = { tokens: [], whole: true, skippedChars: 0, exact: true };

/** Tokens of the text that were never tokenized, estimated from the tail that was. */
function untokenized(tail: TailTokens, textLength: number): number {
  if (tail.whole || tail.tokens.length === 0) return 0;
  return Math.round((tail.skippedChars * tail.tokens.length) / Math.max(1, textLength - tail.skippedChars));
}

/**
 * Builds the token sequence for a request: BOS, memory, then as much of the prompt's end as fits
 * `context - maxTokens`. Trimming is token-exact and from the front, as KoboldCpp clients expect. Only the tail
 * of each text that can fit is tokenized (token-cuts.ts), so a prompt of many megabytes costs what its last
 * `context` tokens cost, not seconds of the event loop; a tail longer than a slice is tokenized in slices that
 * yield to other requests (a 128K-token context's tail is ~1 MB of text).
 */
export async function buildPromptTokens(
  engine: Engine,
  request: GenerationRequest,
  serverContext: number,
): Promise<PromptTokens> {
  const context = Math.max(8, Math.min(request.maxContextTokens ?? serverContext, serverContext));
  const maxTokens = Math.max(0, Math.min(request.maxTokens, context - promptReserve(context)));
  engine.checkRequest?.(request);
  const special = request.parseSpecialTokens;
  const remote = engine.remoteTokenizer;
  if (remote && !remote.available)
    return { tokens: [], maxTokens, truncated: 0, text: request.memory + request.prompt };
  // Over an upstream, its own tokenizer route; locally, only the tail that can fit, in slices that yield.
  const tail = (text: string, count: number) =>
    remote
      ? tokenizeTailAsync((slice, options) => remote.tokenize(slice, options), text, special, count)
      : tokenizeTail(engine, text, special, count);
  const bos = engine.tokenize('', { special: true, addBos: true });
  const budget = Math.max(1, context - maxTokens);
  const memoryRoom = Math.max(0, budget - bos.length);
  const memoryTail = request.memory ? await tail(request.memory, memoryRoom) : NO_TOKENS;
  const memory =
    memoryTail.tokens.length > memoryRoom
      ? memoryTail.tokens.slice(memoryTail.tokens.length - memoryRoom)
      : memoryTail.tokens;
  const room = Math.max(0, budget - bos.length - memory.length);
  const promptTail = request.prompt ? await tail(request.prompt, room) : NO_TOKENS;
  const prompt = promptTail.tokens;
  const kept = prompt.length > room ? prompt.slice(prompt.length - room) : prompt;
  const truncated =
    prompt.length -
    kept.length +
    untokenized(promptTail, request.prompt?.length ?? 0) +
    (memoryTail.tokens.length - memory.length) +
    untokenized(memoryTail, request.memory?.length ?? 0);
  return { tokens: [...bos, ...memory, ...kept], maxTokens, truncated };
}
