import type { GgufMetadataValue } from '../../src/gguf/gguf-value-types.ts';
import type { LlamaHyperParams } from '../../src/gguf/llama-gguf.ts';
import type { Vocabulary } from '../../src/gguf/vocabulary.ts';
import { exportLlamaGguf } from './export-llama-gguf.ts';
import { LlamaParameters } from './llama-parameters.ts';
import { loadTrainingCheckpoint } from './training-checkpoint.ts';

/** The model-shaping settings a training checkpoint records (a subset of TrainModelOptions). */
export interface ModelShapeOptions {
  name: string;
  dim: number;
  layers: number;
  heads: number;
  ffn: number;
  context: number;
}

export function hyperParamsFor(o: ModelShapeOptions): LlamaHyperParams {
  return {
    name: o.name,
    contextLength: o.context,
    embeddingLength: o.dim,
    blockCount: o.layers,
    feedForwardLength: o.ffn,
    headCount: o.heads,
    headCountKv: o.heads,
    rmsEpsilon: 1e-5,
    ropeFreqBase: 10000,
  };
}

/** GGUF metadata every model we train carries besides the llama hyper-parameters. */
export const TRAINED_MODEL_METADATA: ReadonlyArray<readonly [string, GgufMetadataValue]> = [
  [
    'general.description',
    {
      type: 'string',
      value: "Kindling demo model: a small llama trained from scratch on generated children's stories",
    },
  ],
  ['general.license', { type: 'string', value: 'MIT' }],
];

/** Weights and vocabulary of a training checkpoint, ready for our forward pass or for export. */
export function loadCheckpointModel(path: string): { params: LlamaParameters; vocab: Vocabulary; step: number } {
  const ckpt = loadTrainingCheckpoint<{ options: ModelShapeOptions; vocab: Vocabulary; step: number }>(path);
  const { options, vocab, step } = ckpt.header;
  const params = new LlamaParameters(hyperParamsFor(options), vocab.tokens.length, ckpt.arrays.params);
  return { params, vocab, step };
}

/** Exports a checkpoint's current weights as a GGUF, e.g. to ship or sample a run that has not finished. */
export function exportCheckpoint(checkpointPath: string, outputPath: string): number {
  const { params, vocab, step } = loadCheckpointModel(checkpointPath);
  exportLlamaGguf(outputPath, params, vocab, { type: 'F32', extraMetadata: TRAINED_MODEL_METADATA });
  return step;
}
