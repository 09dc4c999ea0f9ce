import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LlamaModel } from 'node-llama-cpp';
import { DEFAULT_SAMPLING, type SamplingParams } from '../../src/core/sampling-params.ts';
import type { EngineJob } from '../../src/engine/engine.ts';
import type {
  NativeContext,
  NativeParts,
  NativeSampler,
  NativeSamplerConfig,
} from '../../src/engine/llama/native-context.ts';
import { SlotSampler, topProbabilities } from '../../src/engine/llama/slot-sampler.ts';

/** Records every config each native sampler got, and which sampler each sample call used. */
function fakeParts() {
  const samplers: Array<{ configs: NativeSamplerConfig[]; disposed: boolean }> = [];
  const sampledWith: number[] = [];
  const parts: NativeParts = {
    newSampler(): NativeSampler {
      const record = { configs: [] as NativeSamplerConfig[], disposed: false };
      samplers.push(record);
      return Object.assign(
        {
          applyConfig: (config: NativeSamplerConfig) => record.configs.push(config),
          dispose: () => {
            record.disposed = true;
          },
        },
        { index: samplers.length - 1 },
      );
    },
    grammarState: () => 'grammar',
    context: {
      sampleToken: async (_logit: number, sampler: NativeSampler & { index?: number }, probabilities?: boolean) => {
        sampledWith.push(sampler.index ?? -1);
        return probabilities ? [5, [5, 0.5, 6, 0.25, 7, 0.25], undefined] : 5;
      },
    } as unknown as NativeContext,
  };
  return { parts, samplers, sampledWith };
}

const model = { tokens: { eos: 2, eot: 9 } } as unknown as LlamaModel;
const job = (sampling: Partial<SamplingParams>, extra: Partial<EngineJob> = {}): EngineJob => ({
  promptTokens: [],
  sampling: { ...DEFAULT_SAMPLING, ...sampling },
  seed: 42,
  banEos: false,
  yieldEog: true,
  logprobs: 0,
  maxTokens: 16,
  ...extra,
});

test('disabled samplers are left out of the chain (top_p 1 is no top-p, top_k 0 no top-k), enabled ones are mapped', () => {
  const f = fakeParts();
  new SlotSampler(f.parts.newSampler, model, job({ topP: 1, topK: 0, minP: 0 }), [], undefined, [1, 2, 3]);
  assert.deepEqual(f.samplers[0]?.configs, [{ temperature: 0.7, seed: 42 }]);
  const g = fakeParts();
  new SlotSampler(
    g.parts.newSampler,
    model,
    job({ topP: 0.9, topK: 40, minP: 0.05, xtc: { probability: 0.5, threshold: 0.1 }, temperature: -1 }),
    [],
    'state',
    [1],
  );
  assert.deepEqual(g.samplers[0]?.configs[0], {
    temperature: 0,
    seed: 42,
    topK: 40,
    topP: 0.9,
    minP: 0.05,
    xtcProbability: 0.5,
    xtcThreshold: 0.1,
    grammarEvaluationState: 'state',
  });
});

test('penalties see the last `range` tokens of the history; bans, EOS bans and logit bias go in as token biases', () => {
  const f = fakeParts();
  new SlotSampler(
    f.parts.newSampler,
    model,
    job({ repeatPenalty: 1.1, repeatPenaltyRange: 3, logitBias: new Map([[7, 2.5]]) }, { banEos: true }),
    [11, 12],
    undefined,
    [1, 2, 3, 4, 5],
  );
  const config = f.samplers[0]?.configs[0] as NativeSamplerConfig;
  assert.deepEqual([...(config.repeatPenaltyTokens ?? [])], [3, 4, 5]);
  assert.equal(config.repeatPenaltyMaxTokens, 3);
  const biases = new Map([...(config.tokenBiasKeys ?? [])].map((k, i) => [k, config.tokenBiasValues?.[i]]));
  assert.deepEqual(
    biases,
    new Map([
      [7, 2.5],
      [11, Number.NEGATIVE_INFINITY],
      [12, Number.NEGATIVE_INFINITY],
      [2, Number.NEGATIVE_INFINITY],
      [9, Number.NEGATIVE_INFINITY],
    ]),
  );
});

test("a position's own bans apply to that one sample, with the penalties' current history; then the job's biases return", async () => {
  const f = fakeParts();
  const history = [1, 2, 3];
  const bans = new Map([[4, new Set([8])]]);
  const sampler = new SlotSampler(
    f.parts.newSampler,
    model,
    job({ repeatPenalty: 1.2, repeatPenaltyRange: 8 }),
    [],
    undefined,
    history,
    bans,
  );
  const context = f.parts.context;
  await sampler.sample(context, 0, 3, false);
  assert.equal(f.samplers[0]?.configs.length, 1, 'no config change for a position without bans');
  history.push(5);
  await sampler.sample(context, 0, 4, false);
  const banned = f.samplers[0]?.configs[1] as NativeSamplerConfig;
  assert.deepEqual([...(banned.tokenBiasKeys ?? [])], [8]);
  assert.deepEqual([...(banned.repeatPenaltyTokens ?? [])], [1, 2, 3, 5], 'the history as it is now');
  history.push(6);
  await sampler.sample(context, 0, 5, false);
  const restored = f.samplers[0]?.configs[2] as NativeSamplerConfig;
  assert.equal(restored.tokenBiasKeys, undefined);
  assert.deepEqual([...(restored.repeatPenaltyTokens ?? [])], [1, 2, 3, 5, 6]);
});

test('restart replaces the chain with one that has seen only the history as it is now', async () => {
  const f = fakeParts();
  const history = [1, 2, 3, 4];
  const sampler = new SlotSampler(f.parts.newSampler, model, job({ repeatPenalty: 1.2 }), [], undefined, history);
  history.length = 2;
  sampler.restart();
  assert.equal(f.samplers[0]?.disposed, true);
  assert.deepEqual([...(f.samplers[1]?.configs[0]?.repeatPenaltyTokens ?? [])], [1, 2]);
  await sampler.sample(f.parts.context, 0, 2, false);
  assert.deepEqual(f.sampledWith, [1]);
  sampler.dispose();
  assert.equal(f.samplers[1]?.disposed, true);
});

test('probabilities: the chosen token and the n most likely, as log-probabilities, from the flat list', async () => {
  const f = fakeParts();
  const sampler = new SlotSampler(f.parts.newSampler, model, job({}), [], undefined, [1]);
  const sampled = await sampler.sample(f.parts.context, 0, 1, true);
  assert.equal(sampled.token, 5);
  const { logprob, top } = topProbabilities(sampled.token, sampled.probabilities, 2);
  assert.equal(logprob, Math.log(0.5));
  assert.deepEqual(
    top.map((t) => t.tokenId),
    [5, 6],
  );
  assert.equal(topProbabilities(3, [5, 0.5], 1).logprob, Number.NEGATIVE_INFINITY, 'a token not among them');
});
