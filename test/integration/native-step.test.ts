import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DEFAULT_SAMPLING, type SamplingParams } from '../../src/core/sampling-params.ts';
import type { EngineEvent, EngineJob, EngineRewind } from '../../src/engine/engine.ts';
import { loadBatchStep } from '../../src/engine/llama/batch-step.ts';
import { LlamaEngine } from '../../src/engine/llama/llama-engine.ts';
import { withDeadline } from '../support/deadline.ts';
import { TEST_TMP, testModelPath } from '../support/test-model.ts';

/**
 * The native step (src/engine/llama/batch-step.ts) samples within the decode with node-llama-cpp's own sampler
 * methods: every sampler must give the same text as the per-slot sampling it replaces. Both engines see the
 * same jobs in the same order, so their caches, and so their logits, stay the same (a reused prefix alone can
 * change the last bits of the logits: persistent-threadpool.test.ts).
 */
let stepped: LlamaEngine;
let plain: LlamaEngine;
/** Per-slot sampleToken calls of the stepped engine: each is a batch whose plan did not run. */
let fallbacks = 0;

before(async () => {
  const options = { modelPath: testModelPath(), contextSize: 256, slots: 4, threads: 1, gpuLayers: 0 } as const;
  stepped = await LlamaEngine.load(options);
  plain = await LlamaEngine.load({ ...options, nativeStep: false });
  const context = (stepped as unknown as { native: { context: { sampleToken: (...args: unknown[]) => unknown } } })
    .native.context;
  const sampleToken = context.sampleToken.bind(context);
  // A method of node-llama-cpp's class, read-only there: the instance gets its own.
  Object.defineProperty(context, 'sampleToken', {
    value: (...args: unknown[]) => {
      fallbacks++;
      return sampleToken(...args);
    },
  });
});
after(async () => {
  await stepped?.dispose();
  await plain?.dispose();
});

interface Generated {
  tokens: number[];
  logprobs: Array<{ logprob?: number | undefined; top?: unknown }>;
}

/** A generation to its end; `rewindAt` sends a phrase-ban rewind of 2 tokens when that many tokens are out. */
async function generate(engine: LlamaEngine, slot: number, job: EngineJob, rewindAt: number[] = []) {
  const out: Generated = { tokens: [], logprobs: [] };
  const events = engine.run(slot, job, new AbortController().signal);
  let reply: EngineRewind | undefined;
  const rewinds = [...rewindAt];
  for (;;) {
    const next: IteratorResult<EngineEvent> = await withDeadline(events.next(reply), 30_000, 'the next token');
    reply = undefined;
    if (next.done) return out;
    if (next.value.type !== 'token') continue;
    const { token, logprob, top } = next.value as { token: number; logprob?: number; top?: unknown };
    out.tokens.push(token);
    out.logprobs.push({ logprob, top });
    if (rewinds[0] === out.tokens.length) {
      rewinds.shift();
      reply = { rewind: 2, ban: out.tokens[out.tokens.length - 2] as number };
      out.tokens.length -= 2;
      out.logprobs.length -= 2;
    }
  }
}

const prompt = (engine: LlamaEngine, text: string) => engine.tokenize(text, { special: false, addBos: true });

function job(engine: LlamaEngine, sampling: Partial<SamplingParams>, extra: Partial<EngineJob> = {}): EngineJob {
  return {
    promptTokens: prompt(engine, 'Once upon a time there was'),
    sampling: { ...DEFAULT_SAMPLING, ...sampling },
    seed: 11,
    banEos: true,
    yieldEog: false,
    logprobs: 0,
    maxTokens: 24,
    ...extra,
  };
}

/** The same job on both engines, slot 0, each after the same history. */
async function same(sampling: Partial<SamplingParams>, extra: Partial<EngineJob> = {}, rewindAt: number[] = []) {
  const before = fallbacks;
  const a = await generate(stepped, 0, job(stepped, sampling, extra), rewindAt);
  assert.equal(fallbacks, before, 'every sample of the stepped engine came from the native step');
  const b = await generate(plain, 0, job(plain, sampling, extra), rewindAt);
  assert.ok(a.tokens.length > 0);
  assert.deepEqual(a.tokens, b.tokens);
  return { a, b };
}

test('greedy', async () => {
  await same({ temperature: 0 });
});

test('temperature, top-k, top-p and min-p', async () => {
  await same({ temperature: 1.3, topK: 40, topP: 0.9, minP: 0.02 });
});

test('repeat, presence and frequency penalties', async () => {
  await same({ repeatPenalty: 1.3, repeatPenaltyRange: 16, presencePenalty: 0.4, frequencyPenalty: 0.3 });
});

test('DRY', async () => {
  await same({
    temperature: 0.8,
    dry: { multiplier: 0.8, base: 1.75, allowedLength: 2, penaltyLastN: 64, sequenceBreakers: ['\n', '.'] },
  });
});

test('XTC', async () => {
  await same({ temperature: 1, xtc: { probability: 0.7, threshold: 0.05 } });
});

test('logit bias and banned tokens', async () => {
  const bias = new Map<number, number>([
    [10, 5],
    [20, -5],
    [30, Number.NEGATIVE_INFINITY],
  ]);
  await same({ logitBias: bias, bannedTokenIds: [40, 41, 42], bannedStrings: ['e'] });
});

test('banned phrases: rewinds sample the position again with its own ban', async () => {
  // With penalties: the chain is configured again after each banned position, from the history it has seen.
  await same(
    { temperature: 1, repeatPenalty: 1.3, repeatPenaltyRange: 8 },
    { rewindable: true, maxTokens: 20 },
    [5, 9, 14],
  );
});

test('grammar', async () => {
  await same({ temperature: 1, grammar: 'root ::= [a-z ]+' }, { maxTokens: 16 });
});

test('a grammar that allows no further token fails the same way', async () => {
  // Complete after one letter, with the end of text banned: the sampler's grammar has nothing left.
  const failure = async (engine: LlamaEngine) => {
    const error = await generate(engine, 0, job(engine, { grammar: 'root ::= "a"' })).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    assert.ok(error instanceof Error, 'the generation failed');
    return error.message;
  };
  const before = fallbacks;
  const a = await failure(stepped);
  assert.equal(fallbacks, before);
  assert.equal(a, await failure(plain));
  assert.match(a, /grammar allows no token/);
});

test('logprobs: the same candidates and probabilities', async () => {
  const { a, b } = await same({ temperature: 0.9, topK: 8 }, { logprobs: 5 });
  assert.deepEqual(a.logprobs, b.logprobs);
  assert.ok(a.logprobs.every((entry) => typeof entry.logprob === 'number' && Number.isFinite(entry.logprob)));
});

test('four slots sampled in one batch', async () => {
  const texts = ['Once upon a time', 'The little fox', 'In a land far away', 'Hello there'];
  const sampling: Partial<SamplingParams> = { temperature: 1, topK: 30, repeatPenalty: 1.1 };
  const run = (engine: LlamaEngine) =>
    Promise.all(
      texts.map((text, slot) =>
        generate(engine, slot, { ...job(engine, sampling), promptTokens: prompt(engine, text), seed: slot + 1 }),
      ),
    );
  const batchesBefore = stepped.counters.decodeBatches;
  const sequencesBefore = stepped.counters.batchedSequences;
  const before = fallbacks;
  const a = await run(stepped);
  assert.equal(fallbacks, before);
  const perBatch =
    (stepped.counters.batchedSequences - sequencesBefore) / (stepped.counters.decodeBatches - batchesBefore);
  assert.ok(perBatch > 2, `${perBatch.toFixed(2)} sequences a batch`);
  const b = await run(plain);
  assert.deepEqual(
    a.map((g) => g.tokens),
    b.map((g) => g.tokens),
  );
});

test('two engines decoding side by side each get their own samples', async () => {
  const options = { modelPath: testModelPath(), contextSize: 128, slots: 2, threads: 1, gpuLayers: 0 } as const;
  const engines = await Promise.all([
    LlamaEngine.load(options),
    LlamaEngine.load(options),
    LlamaEngine.load({ ...options, nativeStep: false }),
  ]);
  const [x, y, reference] = engines;
  try {
    const jobFor = (engine: LlamaEngine, text: string, seed: number) => ({
      ...job(engine, { temperature: 1 }),
      promptTokens: prompt(engine, text),
      seed,
      maxTokens: 32,
    });
    const side = await Promise.all([
      generate(x, 0, jobFor(x, 'The little fox', 1)),
      generate(y, 0, jobFor(y, 'In a land far away', 2)),
    ]);
    const alone = [
      await generate(reference, 0, jobFor(reference, 'The little fox', 1)),
      await generate(reference, 1, jobFor(reference, 'In a land far away', 2)),
    ];
    assert.deepEqual(
      side.map((g) => g.tokens),
      alone.map((g) => g.tokens),
    );
  } finally {
    for (const engine of engines) await engine.dispose();
  }
});

test('an abort while a batch decodes ends the generation after that batch, and the slot works again', async () => {
  const abort = new AbortController();
  const events = stepped.run(1, job(stepped, {}, { maxTokens: 100 }), abort.signal);
  let count = 0;
  for (;;) {
    const next = await withDeadline(events.next(), 30_000, 'a token');
    if (next.done) break;
    if (next.value.type === 'token' && ++count === 3) abort.abort();
  }
  assert.equal(count, 3, 'nothing after the abort');
  const again = await generate(stepped, 1, job(stepped, {}, { maxTokens: 4 }));
  assert.equal(again.tokens.length, 4);
});

test('without a working C++ compiler the loader says why, and the engine samples as before', () => {
  const cache = mkdtempSync(join(tmpdir(), 'kindling-step-'));
  try {
    const outcome = loadBatchStep({ compiler: '/nonexistent/c++', cacheDirs: [cache] });
    assert.equal(outcome.loaded, false);
    assert.match(outcome.loaded ? '' : outcome.reason, /could not compile .*batch-step\.cc with \/nonexistent\/c\+\+/);
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
  assert.match(stepped.model.engineBuild, /, native step, persistent thread pool$/);
  assert.ok(stepped.threadPools() > 0, 'the step hands the decode on to the thread pool, which attached');
  assert.match(plain.model.engineBuild, /no native step \(turned off for this engine\)/);
});

test('a process without a compiler and an empty cache starts, says why, and generates', () => {
  const script = `
    import { LlamaEngine } from ${JSON.stringify(join(import.meta.dirname, '..', '..', 'src', 'engine', 'llama', 'llama-engine.ts'))};
    const engine = await LlamaEngine.load({ modelPath: process.argv[2], contextSize: 128, slots: 1, threads: 1, gpuLayers: 0 });
    const events = engine.run(0, { promptTokens: engine.tokenize('Once', { special: false, addBos: true }),
      sampling: { temperature: 0, topK: 0, topP: 1, minP: 0, repeatPenalty: 1, repeatPenaltyRange: 64, presencePenalty: 0,
        frequencyPenalty: 0, logitBias: new Map(), bannedStrings: [], ignored: [] },
      seed: 1, banEos: true, yieldEog: false, logprobs: 0, maxTokens: 3 }, new AbortController().signal);
    let n = 0;
    for await (const event of events) if (event.type === 'token') n++;
    console.log(JSON.stringify({ build: engine.model.engineBuild, tokens: n }));
    await engine.dispose();`;
  // A file, not `-e`: node-llama-cpp tests its binary in a child process that inherits our flags.
  const file = join(TEST_TMP, `no-compiler-${process.pid}.mts`);
  writeFileSync(file, script);
  const child = spawnSync(process.execPath, ['--import', 'tsx', file, testModelPath()], {
    // The cache is per compiler, so this one finds none and tries to compile.
    env: { ...process.env, CXX: '/nonexistent/c++', KINDLING_NATIVE_STEP: '' },
    encoding: 'utf8',
    timeout: 120_000,
  });
  rmSync(file, { force: true });
  assert.equal(child.status, 0, child.stderr);
  const result = JSON.parse(child.stdout.trim().split('\n').pop() ?? '{}') as { build: string; tokens: number };
  assert.equal(result.tokens, 3);
  assert.match(result.build, /no native step \(could not compile/);
});
