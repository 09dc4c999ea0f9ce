import { parseArgs } from 'node:util';
import { exportCheckpoint } from './checkpoint-model.ts';
import { type TrainModelOptions, trainModel } from './train-model.ts';

/**
 * Command line for the trainer: `node --import tsx tools/train/train-main.ts --out models/demo.gguf
 * --checkpoint .train/demo.ckpt [--resume] [--steps N --dim 128 ...]`, or `--export-only` to write a
 * checkpoint's current weights as GGUF. Numbers map one to one onto
 * TrainModelOptions; anything not given takes trainModel's defaults.
 */
const numeric = [
  'seed',
  'train-stories',
  'held-out-stories',
  'vocab-size',
  'dim',
  'layers',
  'heads',
  'ffn',
  'context',
  'batch',
  'steps',
  'time-budget-seconds',
  'learning-rate',
  'min-learning-rate',
  'warmup-steps',
  'weight-decay',
  'grad-clip',
  'checkpoint-seconds',
  'log-every',
  'eval-every',
  'max-seconds',
  'stop-at-step',
] as const;

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: 'models/demo.gguf' },
    checkpoint: { type: 'string' },
    resume: { type: 'boolean', default: false },
    'export-only': { type: 'boolean', default: false },
    name: { type: 'string' },
    ...Object.fromEntries(numeric.map((k) => [k, { type: 'string' as const }])),
  },
});

const camel = (k: string) => k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
const options: TrainModelOptions = {
  outputPath: values.out as string,
  checkpointPath: values.checkpoint as string | undefined,
  resume: values.resume as boolean,
  name: values.name as string | undefined,
};
for (const key of numeric) {
  const raw = (values as Record<string, unknown>)[key];
  if (typeof raw !== 'string') continue;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new Error(`--${key} must be a number, got ${raw}`);
  (options as unknown as Record<string, number>)[camel(key)] = n;
}
if (values['export-only']) {
  // Ship or sample a run in progress: the checkpoint's current weights, no training.
  if (!options.checkpointPath) throw new Error('--export-only needs --checkpoint');
  const step = exportCheckpoint(options.checkpointPath, options.outputPath);
  console.log(`exported ${options.outputPath} from ${options.checkpointPath} at step ${step}`);
} else {
  console.log(JSON.stringify(trainModel(options)));
}
