import type { LlamaContextSequence, SequenceEvaluateOptions, Token } from 'node-llama-cpp';

/**
 * One generation on node-llama-cpp directly, the "bare engine" side of the single-stream benchmarks. Clearing
 * the previous run's cache and tokenizing are part of the time to first token, as they are for the server.
 * Decode speed is (tokens - 1) / (last - first), as the stream clients measure it.
 */
export async function timeDirectStream(
  sequence: LlamaContextSequence,
  tokens: () => Token[],
  options: SequenceEvaluateOptions,
  generate: number,
): Promise<{ ttft: number; tps: number }> {
  const started = performance.now();
  await sequence.clearHistory();
  let first = 0;
  let count = 0;
  for await (const _token of sequence.evaluate(tokens(), options)) {
    if (!first) first = performance.now();
    if (++count >= generate) break;
  }
  return { ttft: first - started, tps: ((count - 1) * 1000) / (performance.now() - first) };
}
