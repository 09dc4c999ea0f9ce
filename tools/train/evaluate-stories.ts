import type { LlamaComputation } from './llama-computation.ts';
import type { LlamaParameters } from './llama-parameters.ts';
import type { StoryDataset } from './story-dataset.ts';

/**
 * Mean next-token cross-entropy (nats/token) over whole stories, each evaluated alone from its BOS as a
 * fresh prompt would be, predicting every token after BOS up to and including EOS.
 */
export function evaluateStories(
  computation: LlamaComputation,
  params: LlamaParameters,
  data: StoryDataset,
  maxStories = data.storyCount,
): number {
  const V = params.vocabSize;
  let total = 0;
  let count = 0;
  for (let i = 0; i < Math.min(maxStories, data.storyCount); i++) {
    const story = data.story(i);
    const T = Math.min(story.length - 1, computation.maxTokens);
    const logits = computation.forward(params, story, T);
    for (let t = 0; t < T; t++) {
      const o = t * V;
      let max = Number.NEGATIVE_INFINITY;
      for (let k = 0; k < V; k++) if ((logits[o + k] as number) > max) max = logits[o + k] as number;
      let sum = 0;
      for (let k = 0; k < V; k++) sum += Math.exp((logits[o + k] as number) - max);
      total += Math.log(sum) + max - (logits[o + (story[t + 1] as number)] as number);
      count++;
    }
  }
  return total / count;
}

/**
 * The unigram baseline on the same targets: cross-entropy under token frequencies counted on the
 * training set (add-one smoothed), i.e. the best a model with no context at all can do.
 */
export function unigramBaseline(
  train: StoryDataset,
  heldOut: StoryDataset,
  vocabSize: number,
  maxStories = heldOut.storyCount,
): number {
  const counts = new Float64Array(vocabSize).fill(1);
  let n = vocabSize;
  for (let i = 0; i < train.storyCount; i++) {
    const s = train.story(i);
    for (let t = 1; t < s.length; t++) {
      counts[s[t] as number] = (counts[s[t] as number] as number) + 1;
      n++;
    }
  }
  let total = 0;
  let count = 0;
  for (let i = 0; i < Math.min(maxStories, heldOut.storyCount); i++) {
    const s = heldOut.story(i);
    for (let t = 1; t < s.length; t++) {
      total -= Math.log((counts[s[t] as number] as number) / n);
      count++;
    }
  }
  return total / count;
}
