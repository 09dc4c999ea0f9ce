import type {
  BatchItem,
  CustomBatchingPrioritizationStrategy,
  LlamaContext,
  PrioritizedBatchItem,
} from 'node-llama-cpp';
import type { EngineCounters } from '../engine.ts';

/** What node-llama-cpp keeps per queued decode (private; read only for the sequence id). */
interface QueuedDecode {
  sequenceId: number;
  tokens: readonly number[];
}

/**
 * The batch prioritization we give node-llama-cpp: every queued sequence gets a fair share of the batch,
 * and the batch lists the sequences in increasing id order.
 *
 * The order is what matters. With one KV stream per sequence (node-llama-cpp never enables llama.cpp's
 * unified KV cache), llama.cpp cuts a batch into micro-batches of consecutively numbered sequences, each a
 * full pass over the weights. node-llama-cpp fills the batch in queue order, which is the order in which the
 * sequences' sampling happened to finish: 4 sequences in reverse order cost 4 passes, in order one
 * (`bench/batch-shape.ts`, benchmark model, 2 threads: 54 ms a step against 41 ms).
 */
export function sequenceOrderedBatches(
  context: () => LlamaContext | undefined,
  counters?: Pick<EngineCounters, 'decodeBatches' | 'batchedSequences'>,
): CustomBatchingPrioritizationStrategy {
  return ({ items, size }) => {
    // One sequence (a single stream): nothing to order or share, and this runs for every token.
    const only = items.length === 1 ? items[0] : undefined;
    const batch = only
      ? [{ item: only, processAmount: Math.min(size, only.tokens.length) }]
      : orderedBySequence(fairShares(items, size), sequenceIds(context()));
    if (counters) {
      counters.decodeBatches++;
      counters.batchedSequences += batch.length;
    }
    return batch;
  };
}

function orderedBySequence(
  batch: PrioritizedBatchItem[],
  order: Map<readonly number[], number>,
): PrioritizedBatchItem[] {
  return batch.sort((a, b) => (order.get(a.item.tokens) ?? 0) - (order.get(b.item.tokens) ?? 0));
}

/**
 * Water-filling: each item gets up to an equal share of the room, and what short items leave is shared again
 * by the rest. A sequence decoding one token therefore always gets it, whatever long prompts are queued.
 */
export function fairShares(items: readonly BatchItem[], size: number): PrioritizedBatchItem[] {
  const amounts = items.map(() => 0);
  let room = size;
  let open = items.map((_, i) => i);
  while (room > 0 && open.length > 0) {
    const share = Math.max(1, Math.floor(room / open.length));
    for (const i of open) {
      const give = Math.min(share, (items[i] as BatchItem).tokens.length - (amounts[i] as number), room);
      amounts[i] = (amounts[i] as number) + give;
      room -= give;
      if (room === 0) break;
    }
    open = open.filter((i) => (amounts[i] as number) < (items[i] as BatchItem).tokens.length);
  }
  return items
    .map((item, i) => ({ item, processAmount: amounts[i] as number }))
    .filter((prioritized) => prioritized.processAmount > 0);
}

/** A batch item's tokens array is the queued decode's own (node-llama-cpp builds items from its queue). */
function sequenceIds(context: LlamaContext | undefined): Map<readonly number[], number> {
  const queued = (context as unknown as { _queuedDecodes?: QueuedDecode[] } | undefined)?._queuedDecodes;
  if (context && !Array.isArray(queued))
    throw new Error('node-llama-cpp LlamaContext changed shape: update sequence-ordered-batch.ts');
  return new Map((queued ?? []).map((decode) => [decode.tokens, decode.sequenceId]));
}
