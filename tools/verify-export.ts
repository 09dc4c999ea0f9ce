/**
 * Checks a trained model end to end against llama.cpp: tokenization of held-out stories and the
 * next-token distribution at several positions, our forward pass (from the training checkpoint) versus
 * node-llama-cpp running the exported GGUF. Prints the largest differences.
 * `node --import tsx tools/verify-export.ts <checkpoint> <gguf>`
 */
import { getLlama, type Token } from 'node-llama-cpp';
import { loadCheckpointModel } from './train/checkpoint-model.ts';
import { LlamaComputation } from './train/llama-computation.ts';
import { SpmTokenizer } from './train/spm-tokenizer.ts';
import { generateStoryCorpus } from './train/story-corpus.ts';

const [checkpointPath = '', modelPath = 'models/demo.gguf'] = process.argv.slice(2);
const { params, vocab } = loadCheckpointModel(checkpointPath);
const contextLength = params.hparams.contextLength;
const tokenizer = new SpmTokenizer(vocab);
const llama = await getLlama({ gpu: false, maxThreads: 1 });
const model = await llama.loadModel({ modelPath });
const stories = generateStoryCorpus(200, 31337);
let mismatches = 0;
for (const s of stories)
  if (JSON.stringify(tokenizer.encode(s)) !== JSON.stringify([...model.tokenize(s)])) mismatches++;
console.log(`tokenization: ${mismatches} mismatches in ${stories.length} unseen stories`);

const ids = [vocab.bos, ...tokenizer.encode(stories[0] as string)].slice(0, contextLength);
const logits = LlamaComputation.for(params, contextLength).forward(params, ids, ids.length);
const context = await model.createContext({ contextSize: 256, threads: 1 });
const sequence = context.getSequence();
const V = vocab.tokens.length;
for (const n of [1, 2, 5, 20, 60, ids.length]) {
  await sequence.clearHistory();
  const it = sequence.evaluateWithMetadata(ids.slice(0, n) as Token[], { probabilities: true }, { temperature: 0 });
  const theirs = (await it.next()).value?.probabilities;
  await it.return();
  const off = (n - 1) * V;
  if (!theirs) {
    // node-llama-cpp yields nothing when the greedy choice is an end-of-generation token.
    let best = 0;
    for (let i = 0; i < V; i++) if ((logits[off + i] as number) > (logits[off + best] as number)) best = i;
    console.log(
      `position ${n - 1}: llama.cpp ended the sequence (greedy EOS); trainer's top token ${JSON.stringify(vocab.tokens[best])}`,
    );
    continue;
  }
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < V; i++) max = Math.max(max, logits[off + i] as number);
  let sum = 0;
  for (let i = 0; i < V; i++) sum += Math.exp((logits[off + i] as number) - max);
  let worst = 0;
  let best = 0;
  for (let i = 0; i < V; i++) {
    const ours = Math.exp((logits[off + i] as number) - max) / sum;
    if (ours > Math.exp((logits[off + best] as number) - max) / sum) best = i;
    worst = Math.max(worst, Math.abs(ours - (theirs.get(i as Token) ?? 0)));
  }
  const pBest = Math.exp((logits[off + best] as number) - max) / sum;
  console.log(
    `position ${n - 1}: max |p_trainer − p_llama.cpp| = ${worst.toExponential(2)}; top token ${JSON.stringify(vocab.tokens[best])} p=${pBest.toFixed(4)} (llama.cpp ${(theirs.get(best as Token) ?? 0).toFixed(4)})`,
  );
}
await context.dispose();
await model.dispose();
await llama.dispose();
