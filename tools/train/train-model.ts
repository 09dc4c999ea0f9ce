import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { LlamaHyperParams } from '../../src/gguf/llama-gguf.ts';
import { seededRandom } from '../../src/gguf/seeded-random.ts';
import type { Vocabulary } from '../../src/gguf/vocabulary.ts';
import { AdamW, clipGradientNorm, DEFAULT_ADAMW } from './adamw.ts';
import { hyperParamsFor, TRAINED_MODEL_METADATA } from './checkpoint-model.ts';
import { learningRateAt } from './cosine-schedule.ts';
import { evaluateStories, unigramBaseline } from './evaluate-stories.ts';
import { exportLlamaGguf } from './export-llama-gguf.ts';
import { LlamaComputation } from './llama-computation.ts';
import { LlamaParameters } from './llama-parameters.ts';
import { SpmTokenizer } from './spm-tokenizer.ts';
import { generateStoryCorpus } from './story-corpus.ts';
import { StoryDataset } from './story-dataset.ts';
import { trainTokenizer } from './train-tokenizer.ts';
import { loadTrainingCheckpoint, saveTrainingCheckpoint } from './training-checkpoint.ts';

export interface TrainModelOptions {
  /** Where the GGUF goes. */
  outputPath: string;
  /** Resumable state; resumed from when it exists and `resume` is true. */
  checkpointPath?: string;
  resume?: boolean;
  seed?: number;
  trainStories?: number;
  heldOutStories?: number;
  vocabSize?: number;
  dim?: number;
  layers?: number;
  heads?: number;
  ffn?: number;
  /** Training window length in tokens; also written as the model's context length. */
  context?: number;
  /** Windows per optimizer step. */
  batch?: number;
  steps?: number;
  /**
   * Wall-clock seconds of training the schedule may take (0: no limit). When the machine is slower than
   * planned, the cosine schedule advances by elapsed time instead of steps, so the run still ends with a
   * fully decayed learning rate on time; it then stops before `steps`.
   */
  timeBudgetSeconds?: number;
  learningRate?: number;
  minLearningRate?: number;
  warmupSteps?: number;
  weightDecay?: number;
  gradClip?: number;
  /** Checkpoint at most this often (seconds of training). */
  checkpointSeconds?: number;
  /** Progress line every this many steps. */
  logEvery?: number;
  /** Held-out loss (on up to 50 stories) every this many steps; the final evaluation uses all of them. */
  evalEvery?: number;
  /** Stop early (saving a checkpoint and exporting) after this many seconds of training in this process. */
  maxSeconds?: number;
  /** Stop early (saving a checkpoint and exporting) once this step is done; the schedule still ends at `steps`. */
  stopAtStep?: number;
  name?: string;
  log?: (line: string) => void;
}

export interface TrainModelResult {
  outputPath: string;
  parameters: number;
  steps: number;
  tokensTrained: number;
  trainSeconds: number;
  tokensPerSecond: number;
  trainLoss: number;
  heldOutLoss: number;
  unigramLoss: number;
  hparams: LlamaHyperParams;
  vocabSize: number;
}

interface CheckpointHeader {
  options: Required<
    Omit<TrainModelOptions, 'log' | 'resume' | 'checkpointPath' | 'maxSeconds' | 'stopAtStep' | 'outputPath'>
  >;
  vocab: Vocabulary;
  step: number;
  trainSeconds: number;
}

export const TRAIN_DEFAULTS = {
  seed: 7,
  trainStories: 20000,
  heldOutStories: 500,
  vocabSize: 1024,
  dim: 128,
  layers: 4,
  heads: 4,
  ffn: 384,
  context: 256,
  batch: 4,
  steps: 2000,
  timeBudgetSeconds: 0,
  learningRate: 3e-3,
  minLearningRate: 3e-4,
  warmupSteps: 50,
  weightDecay: 0.1,
  gradClip: 1,
  checkpointSeconds: 300,
  logEvery: 10,
  evalEvery: 200,
  name: 'kindling-demo-stories',
};

const formatDuration = (s: number) =>
  s >= 3600
    ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
    : `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;

/**
 * Generates the story corpus, trains the tokenizer and a llama decoder on it (AdamW, cosine schedule,
 * gradient clipping, single thread), checkpoints, evaluates held-out loss against a unigram baseline and
 * exports a GGUF that llama.cpp runs with the same next-token distribution as our forward pass.
 */
export function trainModel(input: TrainModelOptions): TrainModelResult {
  const log = input.log ?? ((line: string) => console.log(line));
  let options: CheckpointHeader['options'] = { ...TRAIN_DEFAULTS };
  for (const key of Object.keys(TRAIN_DEFAULTS) as Array<keyof typeof TRAIN_DEFAULTS>) {
    if (input[key] !== undefined) (options as Record<string, unknown>)[key] = input[key];
  }
  let vocab: Vocabulary | undefined;
  let step = 0;
  let trainSeconds = 0;
  let resumed: ReturnType<typeof loadTrainingCheckpoint<CheckpointHeader>> | undefined;
  if (input.checkpointPath && input.resume && existsSync(input.checkpointPath)) {
    resumed = loadTrainingCheckpoint<CheckpointHeader>(input.checkpointPath);
    // The checkpoint's settings win: resuming with different shapes or data would be a different run.
    options = resumed.header.options;
    vocab = resumed.header.vocab;
    step = resumed.header.step;
    trainSeconds = resumed.header.trainSeconds;
    log(`resumed ${input.checkpointPath} at step ${step}`);
  }
  const o = options;
  const trainTexts = generateStoryCorpus(o.trainStories, o.seed);
  const seen = new Set(trainTexts);
  const heldOutTexts = generateStoryCorpus(o.heldOutStories * 2, o.seed + 1_000_003)
    .filter((s) => !seen.has(s))
    .slice(0, o.heldOutStories);
  vocab ??= trainTokenizer(trainTexts, { vocabSize: o.vocabSize });
  const tokenizer = new SpmTokenizer(vocab);
  const train = new StoryDataset(trainTexts, tokenizer);
  const heldOut = new StoryDataset(heldOutTexts, tokenizer);
  const hparams = hyperParamsFor(o);
  const V = vocab.tokens.length;
  const params = resumed
    ? new LlamaParameters(hparams, V, resumed.arrays.params)
    : LlamaParameters.initialize(hparams, V, o.seed);
  const grads = params.zerosLike();
  const optimizer = new AdamW(
    params,
    { ...DEFAULT_ADAMW, weightDecay: o.weightDecay },
    resumed ? { m: resumed.arrays.m as Float32Array, v: resumed.arrays.v as Float32Array } : undefined,
  );
  const computation = LlamaComputation.for(params, o.context);
  const schedule = { peak: o.learningRate, min: o.minLearningRate, warmupSteps: o.warmupSteps, totalSteps: o.steps };
  log(
    `corpus: ${train.storyCount} train stories (${train.tokens.length} tokens), ${heldOut.storyCount} held-out; vocab ${V}; ` +
      `model ${params.count} parameters (dim ${o.dim}, ${o.layers} layers, ${o.heads} heads, ffn ${o.ffn}, context ${o.context})`,
  );

  const checkpoint = () => {
    if (!input.checkpointPath) return;
    mkdirSync(dirname(input.checkpointPath), { recursive: true });
    saveTrainingCheckpoint<CheckpointHeader>(input.checkpointPath, {
      header: { options: o, vocab: vocab as Vocabulary, step, trainSeconds },
      arrays: { params: params.data, m: optimizer.m, v: optimizer.v },
    });
  };
  const runStart = performance.now();
  let lastCheckpoint = trainSeconds;
  let windowLoss = 0;
  let windowTokens = 0;
  let windowStart = performance.now();
  let stepTokens = 0;
  // The schedule position: steps done, or the share of the time budget spent, whichever is further.
  const progressStep = () =>
    o.timeBudgetSeconds > 0 ? Math.max(step, Math.floor((trainSeconds / o.timeBudgetSeconds) * o.steps)) : step;
  while (progressStep() < o.steps) {
    const stepStart = performance.now();
    // The batch depends only on (seed, step), so a resumed run sees the same data as an uninterrupted one.
    const pick = seededRandom((o.seed * 1_000_003 + step) >>> 0);
    grads.data.fill(0);
    let loss = 0;
    stepTokens = 0;
    const windows = [];
    while (windows.length < o.batch) {
      const w = train.window(Math.floor(pick() * train.storyCount), o.context);
      if (w) windows.push(w);
    }
    for (const w of windows)
      loss += computation.lossAndBackward(params, grads, w.inputs, w.targets, o.context, 1 / (o.batch * o.context));
    stepTokens = o.batch * o.context;
    const gradNorm = clipGradientNorm(grads.data, o.gradClip);
    step++;
    const lr = learningRateAt(Math.max(step, progressStep()), schedule);
    optimizer.update(params.data, grads.data, lr, step);
    trainSeconds += (performance.now() - stepStart) / 1000;
    windowLoss += loss;
    windowTokens += stepTokens;
    if (step % o.logEvery === 0 || progressStep() >= o.steps) {
      const seconds = (performance.now() - windowStart) / 1000;
      const tps = windowTokens / seconds;
      const stepEta = ((o.steps - step) * stepTokens) / tps;
      const eta =
        o.timeBudgetSeconds > 0 ? Math.min(stepEta, Math.max(0, o.timeBudgetSeconds - trainSeconds)) : stepEta;
      log(
        `step ${step}/${o.steps} loss ${(windowLoss / windowTokens).toFixed(4)} lr ${lr.toExponential(2)} |g| ${gradNorm.toFixed(2)} ` +
          `${tps.toFixed(0)} tok/s elapsed ${formatDuration(trainSeconds)} ETA ${formatDuration(eta)}`,
      );
      windowLoss = 0;
      windowTokens = 0;
      windowStart = performance.now();
    }
    if (step % o.evalEvery === 0 && step < o.steps) {
      const n = Math.min(50, heldOut.storyCount);
      log(`step ${step} held-out loss ${evaluateStories(computation, params, heldOut, n).toFixed(4)} (${n} stories)`);
    }
    if (trainSeconds - lastCheckpoint >= o.checkpointSeconds) {
      checkpoint();
      lastCheckpoint = trainSeconds;
      log(`checkpoint saved at step ${step}`);
    }
    if (input.maxSeconds !== undefined && (performance.now() - runStart) / 1000 >= input.maxSeconds) {
      log(`stopping early at step ${step}: maxSeconds ${input.maxSeconds} reached`);
      break;
    }
    if (input.stopAtStep !== undefined && step >= input.stopAtStep) {
      log(`stopping at step ${step} as asked (schedule runs to ${o.steps})`);
      break;
    }
  }
  checkpoint();
  const heldOutLoss = evaluateStories(computation, params, heldOut);
  const trainSample = new StoryDataset(trainTexts.slice(0, heldOut.storyCount), tokenizer);
  const trainLoss = evaluateStories(computation, params, trainSample);
  const unigramLoss = unigramBaseline(train, heldOut, V);
  log(
    `final: train loss ${trainLoss.toFixed(4)}, held-out loss ${heldOutLoss.toFixed(4)}, unigram baseline ${unigramLoss.toFixed(4)} (nats/token)`,
  );
  mkdirSync(dirname(input.outputPath), { recursive: true });
  exportLlamaGguf(input.outputPath, params, vocab, {
    type: 'F32',
    extraMetadata: TRAINED_MODEL_METADATA,
  });
  log(`exported ${input.outputPath}`);
  return {
    outputPath: input.outputPath,
    parameters: params.count,
    steps: step,
    tokensTrained: step * o.batch * o.context,
    trainSeconds,
    tokensPerSecond: (step * o.batch * o.context) / Math.max(trainSeconds, 1e-9),
    trainLoss,
    heldOutLoss,
    unigramLoss,
    hparams,
    vocabSize: V,
  };
}
