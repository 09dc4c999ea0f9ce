import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../../src/main.ts';
import { parseLikeLite } from '../support/lite-sse-parser.ts';
import { openStream } from '../support/sse-capture.ts';
import { getJson, postJson, startTestServer } from '../support/test-server.ts';

describe('parallel slots on the real engine', () => {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer({ contextSize: 1024, parallel: 3, maxQueue: 8 });
  });
  after(async () => server.close());

  test('concurrent streams each get exactly their own grammar-forced pattern, never another one', async () => {
    const patterns = ['ab', 'cd', 'ef', 'gh', 'ij', 'kl'];
    const streams = await Promise.all(
      patterns.map((p) =>
        openStream(`${server.url}/api/extra/generate/stream`, {
          prompt: `pattern ${p}`,
          max_length: 60,
          ban_eos_token: true,
          grammar: `root ::= ("${p}")+`,
          genkey: `ISO-${p}`,
        }),
      ),
    );
    await Promise.all(streams.map((s) => s.done));
    streams.forEach((stream, i) => {
      const text = parseLikeLite(stream.text)
        .events.map((e) => e.data.token)
        .join('');
      const p = patterns[i] as string;
      assert.ok(text.length >= 40, `${p}: ${text.length} chars`);
      assert.equal(text.replaceAll(p, ''), '', `${p} got ${text}`);
    });
    for (const p of patterns) {
      const check = (await postJson(`${server.url}/api/extra/generate/check`, { genkey: `ISO-${p}` })).body.results[0];
      assert.equal(check.text.replaceAll(p, ''), '');
    }
  });

  /** Streams `tokens` tokens from each prompt at once; the decode batches and batched sequences they took. */
  async function batchesFor(prompts: string[], tokens: number): Promise<{ batches: number; sequences: number }> {
    const before = (await getJson(`${server.url}/api/extra/perf`)).body;
    const streams = await Promise.all(
      prompts.map((prompt) =>
        openStream(`${server.url}/api/extra/generate/stream`, { prompt, max_length: tokens, ban_eos_token: true }),
      ),
    );
    await Promise.all(streams.map((s) => s.done));
    const afterPerf = (await getJson(`${server.url}/api/extra/perf`)).body;
    assert.equal(afterPerf.tokens_generated - before.tokens_generated, prompts.length * tokens);
    return {
      batches: afterPerf.decode_batches - before.decode_batches,
      sequences: afterPerf.batched_sequences - before.batched_sequences,
    };
  }

  test('slots generating together share every decode batch: about one batch per token, not one per slot', async () => {
    const tokens = 40;
    const { batches, sequences } = await batchesFor(['The fox ran', 'The dog ran', 'The cat ran'], tokens);
    // Unbatched, 3 × 40 tokens are 120 decodes; shared, 40 plus the few before all three have joined.
    assert.ok(batches <= tokens + 6, `${batches} decode batches for ${tokens} tokens in each of 3 slots`);
    assert.ok(sequences / batches >= 2.7, `${(sequences / batches).toFixed(2)} slots per batch`);
  });

  test('two slots generating while a third is free still share every decode batch', async () => {
    // With a slot free, node-llama-cpp leaves the batch's start to our dispatch schedule instead of starting it
    // when every sequence has queued: both slots' decodes must still be queued by then.
    const tokens = 40;
    const { batches, sequences } = await batchesFor(['The owl sang', 'The hen sang'], tokens);
    assert.ok(batches <= tokens + 4, `${batches} decode batches for ${tokens} tokens in each of 2 slots`);
    assert.ok(sequences / batches >= 1.8, `${(sequences / batches).toFixed(2)} slots per batch`);
  });

  test('a follow-up that resends the story plus a little evaluates only the new suffix', async () => {
    const story = 'Once upon a time there was a little fox. '.repeat(12);
    const follow = `${story}The fox ran.`;
    await postJson(`${server.url}/api/v1/generate`, { prompt: story, max_length: 1, genkey: 'STORY-1' });
    const tokensOf = async (text: string) =>
      (await postJson(`${server.url}/api/extra/tokencount`, { prompt: text })).body.ids as number[];
    const [a, b] = await Promise.all([tokensOf(story), tokensOf(follow)]);
    let shared = 0;
    while (shared < a.length && a[shared] === b[shared]) shared++;
    const before = (await getJson(`${server.url}/api/extra/perf`)).body;
    const result = await postJson(`${server.url}/api/v1/generate`, { prompt: follow, max_length: 1 });
    assert.equal(result.status, 200);
    const afterPerf = (await getJson(`${server.url}/api/extra/perf`)).body;
    assert.equal(afterPerf.prompt_tokens_evaluated - before.prompt_tokens_evaluated, b.length - shared);
    assert.equal(afterPerf.prompt_tokens_reused - before.prompt_tokens_reused, shared);
    assert.ok(shared > 100);
  });
});

describe('context shift on the real engine', () => {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer({ contextSize: 256, parallel: 1 });
  });
  after(async () => server.close());

  test('a story that outgrew the context is shifted, not re-evaluated: only the new text is computed', async () => {
    const words = ['fox', 'dog', 'cat', 'ran', 'happy', 'little', 'time', 'story', 'end', 'World'];
    let story = '';
    for (let i = 0; i < 400; i++) story += ` ${words[(i * 7 + Math.floor(i / 3)) % words.length]}`;
    const first = await postJson(`${server.url}/api/v1/generate`, {
      prompt: story,
      max_length: 16,
      ban_eos_token: true,
    });
    assert.ok(first.body.results[0].prompt_tokens >= 230, 'the first request fills the context');
    const before = (await getJson(`${server.url}/api/extra/perf`)).body;
    const next = `${story} the end of the story`;
    const second = await postJson(`${server.url}/api/v1/generate`, {
      prompt: next,
      max_length: 16,
      ban_eos_token: true,
    });
    assert.equal(second.status, 200);
    const afterPerf = (await getJson(`${server.url}/api/extra/perf`)).body;
    const evaluated = afterPerf.prompt_tokens_evaluated - before.prompt_tokens_evaluated;
    assert.ok(evaluated <= 20, `evaluated ${evaluated} of ${second.body.results[0].prompt_tokens} prompt tokens`);
    assert.ok(afterPerf.prompt_tokens_reused - before.prompt_tokens_reused >= 200);
  });
});
