import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { getLlama, type Llama, LlamaCompletion, type LlamaModel, type Token } from 'node-llama-cpp';
import type { Vocabulary } from '../../src/gguf/vocabulary.ts';
import { LlamaComputation } from '../../tools/train/llama-computation.ts';
import { LlamaParameters } from '../../tools/train/llama-parameters.ts';
import { SpmTokenizer } from '../../tools/train/spm-tokenizer.ts';
import { generateStoryCorpus } from '../../tools/train/story-corpus.ts';
import { type TrainModelOptions, type TrainModelResult, trainModel } from '../../tools/train/train-model.ts';
import { loadTrainingCheckpoint } from '../../tools/train/training-checkpoint.ts';

// A tiny configuration: seconds of CPU, yet the full path from corpus to a GGUF that llama.cpp runs.
const TINY: Omit<TrainModelOptions, 'outputPath'> = {
  seed: 11,
  trainStories: 300,
  heldOutStories: 20,
  vocabSize: 400,
  dim: 32,
  layers: 2,
  heads: 2,
  ffn: 64,
  context: 64,
  batch: 4,
  steps: 120,
  warmupSteps: 10,
  learningRate: 1e-2,
  minLearningRate: 1e-3,
  logEvery: 10,
  evalEvery: 1000,
};

let dir: string;
let result: TrainModelResult;
let lines: string[];
let llama: Llama;
let model: LlamaModel;
let vocab: Vocabulary;
let params: LlamaParameters;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kindling-train-'));
  lines = [];
  result = trainModel({
    ...TINY,
    outputPath: join(dir, 'tiny.gguf'),
    checkpointPath: join(dir, 'tiny.ckpt'),
    log: (l) => lines.push(l),
  });
  const ckpt = loadTrainingCheckpoint<{ vocab: Vocabulary }>(join(dir, 'tiny.ckpt'));
  vocab = ckpt.header.vocab;
  params = new LlamaParameters(result.hparams, result.vocabSize, ckpt.arrays.params);
  llama = await getLlama({ gpu: false, maxThreads: 1 });
  model = await llama.loadModel({ modelPath: result.outputPath });
});

after(async () => {
  await model?.dispose();
  await llama?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

test('training loss decreases and held-out loss beats the unigram baseline', () => {
  const losses = lines
    .filter((l) => l.startsWith('step ') && l.includes(' loss '))
    .map((l) => Number(/ loss ([\d.]+)/.exec(l)?.[1]));
  assert.ok(losses.length >= 4, `progress lines: ${lines.join('\n')}`);
  assert.ok(
    lines.some((l) => /tok\/s .*ETA/.test(l)),
    'progress shows tokens/s and ETA',
  );
  assert.ok((losses.at(-1) as number) < (losses[0] as number) - 1, `losses ${losses.join(', ')}`);
  assert.ok(result.heldOutLoss < result.unigramLoss, `held-out ${result.heldOutLoss} vs unigram ${result.unigramLoss}`);
});

test('a run stopped and resumed from its checkpoint ends where an uninterrupted run does', () => {
  const ckpt = join(dir, 'resume.ckpt');
  const out = join(dir, 'resume.gguf');
  trainModel({ ...TINY, outputPath: out, checkpointPath: ckpt, stopAtStep: 47, log: () => {} });
  const resumed = trainModel({ ...TINY, outputPath: out, checkpointPath: ckpt, resume: true, log: () => {} });
  assert.equal(resumed.steps, TINY.steps);
  assert.equal(resumed.heldOutLoss, result.heldOutLoss);
  assert.deepEqual(readFileSync(out), readFileSync(result.outputPath));
});

test('llama.cpp tokenizes text exactly as the trainer does', () => {
  const tokenizer = new SpmTokenizer(vocab);
  const texts = [
    ...generateStoryCorpus(30, 999),
    'Once upon a time',
    '  two  spaces\nand a newline',
    'Zebra! ünïcode 日本 ok?',
  ];
  for (const text of texts) assert.deepEqual(tokenizer.encode(text), [...model.tokenize(text)], text);
});

test("llama.cpp's next-token distribution equals the trainer's forward pass", async () => {
  const tokenizer = new SpmTokenizer(vocab);
  const ids = [vocab.bos, ...tokenizer.encode(generateStoryCorpus(1, 4242)[0] as string)].slice(0, 48);
  const logits = LlamaComputation.for(params, 64).forward(params, ids, ids.length);
  const context = await model.createContext({ contextSize: 256, threads: 1 });
  const sequence = context.getSequence();
  const V = result.vocabSize;
  let peak = 0;
  try {
    for (const n of [1, 2, 9, 30, 48]) {
      await sequence.clearHistory();
      const it = sequence.evaluateWithMetadata(ids.slice(0, n) as Token[], { probabilities: true }, { temperature: 0 });
      const theirs = (await it.next()).value?.probabilities;
      await it.return();
      assert.ok(theirs, 'llama.cpp returned probabilities');
      const o = (n - 1) * V;
      let max = Number.NEGATIVE_INFINITY;
      for (let i = 0; i < V; i++) max = Math.max(max, logits[o + i] as number);
      let sum = 0;
      for (let i = 0; i < V; i++) sum += Math.exp((logits[o + i] as number) - max);
      let worst = 0;
      let top = 0;
      for (let i = 0; i < V; i++) {
        const ours = Math.exp((logits[o + i] as number) - max) / sum;
        top = Math.max(top, ours);
        worst = Math.max(worst, Math.abs(ours - (theirs.get(i as Token) ?? 0)));
      }
      assert.ok(worst < 1e-4, `position ${n - 1}: max |p_ours − p_llama| = ${worst}`);
      peak = Math.max(peak, top);
    }
    // The trained model is confident somewhere, so the comparison covered peaked distributions, not near-uniform noise.
    assert.ok(peak > 0.2, `highest top probability ${peak}`);
  } finally {
    await context.dispose();
  }
});

test('the exported GGUF generates text in node-llama-cpp', async () => {
  const context = await model.createContext({ contextSize: 256, threads: 1 });
  try {
    const completion = new LlamaCompletion({ contextSequence: context.getSequence() });
    const text = await completion.generateCompletion('Once upon a time', { maxTokens: 24, temperature: 0.7, seed: 1 });
    assert.ok(text.trim().length > 0, 'generated some text');
  } finally {
    await context.dispose();
  }
});

test('analytic gradients match finite differences', () => {
  const h = { ...result.hparams, embeddingLength: 16, feedForwardLength: 24, contextLength: 8 };
  const p = LlamaParameters.initialize(h, 20, 3);
  for (let i = 0; i < p.count; i++) p.data[i] = (p.data[i] as number) + Math.sin(i * 12.9898) * 0.3;
  const grads = p.zerosLike();
  const scratch = p.zerosLike();
  const computation = LlamaComputation.for(p, 8);
  for (const T of [8, 7]) {
    grads.data.fill(0);
    const tokens = [1, 5, 7, 3, 9, 2, 4, 6].slice(0, T);
    const targets = [5, 7, 3, 9, 2, 4, 6, 11].slice(0, T);
    computation.lossAndBackward(p, grads, tokens, targets, T, 1);
    for (const [name, { offset, size }] of p.offsets) {
      for (const j of [0, 5 * 16 + 2, Math.floor(size / 2), size - 1]) {
        if (j >= size) continue;
        const i = offset + j;
        const old = p.data[i] as number;
        const e = 3e-3;
        p.data[i] = old + e;
        const plus = computation.lossAndBackward(p, scratch, tokens, targets, T, 1);
        p.data[i] = old - e;
        const minus = computation.lossAndBackward(p, scratch, tokens, targets, T, 1);
        p.data[i] = old;
        const numeric = (plus - minus) / (2 * e);
        const analytic = grads.data[i] as number;
        assert.ok(
          Math.abs(numeric - analytic) <= 0.02 * Math.max(0.01, Math.abs(numeric)),
          `${name}[${j}] T=${T}: ${numeric} vs ${analytic}`,
        );
      }
    }
  }
});
