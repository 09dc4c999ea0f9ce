import { basename } from 'node:path';
import type { Llama, LlamaModel } from 'node-llama-cpp';
import type { Adjustment, ModelInfo } from '../../core/model-info.ts';
import type { BatchStep } from './batch-step.ts';
import type { PersistentThreadpool } from './persistent-threadpool.ts';

export interface ModelDescriptionInputs {
  modelPath: string;
  /** The context size in use (after planContextSize). */
  contextSize: number;
  canEmbed: boolean;
  threadpool: PersistentThreadpool;
  step: BatchStep;
  placeholder: boolean;
  /** Settings lowered from what the configuration asked. */
  adjustments: Adjustment[];
}

/** What the server tells clients about the loaded model, from its GGUF metadata and the build that runs it. */
export function describeModel(llama: Llama, llamaModel: LlamaModel, inputs: ModelDescriptionInputs): ModelInfo {
  const metadata = llamaModel.fileInfo.metadata as {
    general?: { name?: string; architecture?: string };
    tokenizer?: { chat_template?: string; ggml?: { tokens?: readonly string[] } };
  };
  const { threadpool, step } = inputs;
  const stepped = step.loaded ? 'native step' : `no native step (${step.reason})`;
  return {
    name: basename(inputs.modelPath).replace(/\.gguf$/i, ''),
    path: inputs.modelPath,
    contextSize: inputs.contextSize,
    trainContextSize: llamaModel.trainContextSize,
    vocabularySize: metadata.tokenizer?.ggml?.tokens?.length ?? 0,
    sizeBytes: llamaModel.size,
    parameterCount: llamaModel.fileInsights.totalParameters,
    architecture: metadata.general?.architecture ?? 'unknown',
    chatTemplate: metadata.tokenizer?.chat_template,
    canEmbed: inputs.canEmbed,
    engineBuild: `llama.cpp ${llama.llamaCppRelease.release}, ${llama.buildType === 'localBuild' ? 'local build (npm run build:engine)' : 'prebuilt binary'}, ${llama.gpu === false ? 'CPU' : llama.gpu}, ${stepped}, ${threadpool.loaded ? 'persistent thread pool' : `no persistent thread pool (${threadpool.reason})`}`,
    placeholder: inputs.placeholder,
    adjustments: inputs.adjustments,
  };
}
