import { parseArgs } from 'node:util';
import { exportCheckpoint } from './checkpoint-model.ts';
import { TRAIN_DEFAULTS, type TrainModelOptions, trainModel } from './train-model.ts';

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
    help: { type: 'boolean', short: 'h', default: false },
    ...Object.fromEntries(numeric.map((k) => [k, { type: 'string' as const }])),
  },
});

const camel = (k: string) => k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

if (values.help) {
  // The defaults come from trainModel itself, so the help cannot drift from what a run does.
  const defaults = TRAIN_DEFAULTS as Record<string, number | string>;
  const notes: Record<string, string> = {
    'time-budget-seconds': 'schedule follows the clock, ends within this time; 0: no limit',
    'max-seconds': 'stop early (checkpoint, export) after this long in this process',
    'stop-at-step': 'stop early (checkpoint, export) after this step; the schedule still ends at --steps',
  };
  const flag = (k: string) => {
    const fallback = defaults[camel(k)];
    const text = [notes[k], fallback === undefined ? undefined : `default ${fallback}`].filter(Boolean).join('; ');
    return text ? `  --${k} N`.padEnd(32) + text : `  --${k} N`;
  };
  console.log(
    [
      'npm run train -- [--out models/demo.gguf] [--checkpoint file] [--resume] [--name text] [numbers...]',
      'npm run train -- --export-only --checkpoint file [--out file.gguf]',
      '',
      '  --out file.gguf               where the GGUF goes (default models/demo.gguf)',
      '  --checkpoint file             resumable training state, saved as the run goes',
      '  --resume                      go on from --checkpoint when it exists',
      "  --export-only                 write the checkpoint's current weights as GGUF; no training",
      `  --name text                   model name in the GGUF (default ${TRAIN_DEFAULTS.name})`,
      ...numeric.map((k) => flag(k)),
    ].join('\n'),
  );
  process.exit(0);
}
const options: TrainModelOptions = {
  outputPath: values.out as string,
  resume: values.resume as boolean,
  ...(typeof values.checkpoint === 'string' ? { checkpointPath: values.checkpoint } : {}),
  ...(typeof values.name === 'string' ? { name: values.name } : {}),
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
