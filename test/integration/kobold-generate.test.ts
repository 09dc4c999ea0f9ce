import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../../src/main.ts';
import { postJson, startTestServer } from '../support/test-server.ts';

const EOS = 2;

describe('POST /api/v1/generate (real server, real model)', () => {
  let server: RunningServer;
  let url: string;
  before(async () => {
    server = await startTestServer({ contextSize: 256, defaultMaxLength: 20 });
    url = `${server.url}/api/v1/generate`;
  });
  after(async () => server.close());

  const generate = (body: unknown) => postJson(url, body);

  test('returns the generated text only, with a finish reason and real token counts', async () => {
    const { status, body } = await generate({
      prompt: 'Once upon a time',
      max_length: 8,
      ban_eos_token: true,
      sampler_seed: 1,
    });
    assert.equal(status, 200);
    const [result] = body.results;
    assert.equal(typeof result.text, 'string');
    assert.ok(!result.text.startsWith('Once upon a time'));
    assert.equal(result.finish_reason, 'length');
    assert.equal(result.completion_tokens, 8);
    const promptIds = (await postJson(`${server.url}/api/extra/tokencount`, { prompt: 'Once upon a time' })).body.ids;
    assert.equal(result.prompt_tokens, promptIds.length);
  });

  test('an empty body {} uses the defaults', async () => {
    const { status, body } = await generate({});
    assert.equal(status, 200);
    assert.ok(body.results[0].completion_tokens <= 20);
  });

  test('the same seed gives the same text; temperature > 0', async () => {
    const body = { prompt: 'The cat', max_length: 16, temperature: 1.2, sampler_seed: 77, ban_eos_token: true };
    const a = (await generate(body)).body.results[0].text;
    const b = (await generate(body)).body.results[0].text;
    assert.equal(a, b);
    const c = (await generate({ ...body, sampler_seed: 78 })).body.results[0].text;
    assert.notEqual(a, c);
  });

  test('max_length 0 generates nothing, finish length', async () => {
    const { body } = await generate({ prompt: 'x', max_length: 0 });
    assert.deepEqual(
      [body.results[0].text, body.results[0].finish_reason, body.results[0].completion_tokens],
      ['', 'length', 0],
    );
  });

  test('max_length beyond the context is capped so the prompt keeps 16 tokens', async () => {
    const { status, body } = await generate({
      prompt: 'Hello',
      max_length: 100000,
      ban_eos_token: true,
      temperature: 0,
    });
    assert.equal(status, 200);
    assert.equal(body.results[0].completion_tokens, 256 - 16);
  });

  test('max_context_length above the server context behaves as the server context', async () => {
    const { status, body } = await generate({
      prompt: 'Hello',
      max_length: 4,
      max_context_length: 999999,
      ban_eos_token: true,
    });
    assert.equal(status, 200);
    assert.equal(body.results[0].completion_tokens, 4);
  });

  test('an EOS token ends generation with finish stop and no EOS text', async () => {
    const { body } = await generate({ prompt: 'Hello', max_length: 10, logit_bias: { [EOS]: 100 } });
    assert.deepEqual([body.results[0].text, body.results[0].finish_reason], ['', 'stop']);
  });

  test('bypass_eos keeps going through EOS; render_special shows its text', async () => {
    const { body } = await generate({
      prompt: 'Hello',
      max_length: 3,
      logit_bias: { [EOS]: 100 },
      bypass_eos: true,
      render_special: true,
    });
    assert.equal(body.results[0].finish_reason, 'length');
    assert.equal(body.results[0].text, '</s></s></s>');
    const quiet = (await generate({ prompt: 'Hello', max_length: 3, logit_bias: { [EOS]: 100 }, bypass_eos: true }))
      .body.results[0];
    assert.deepEqual([quiet.text, quiet.finish_reason], ['', 'length']);
  });

  test('ban_eos_token / use_default_badwordsids run to max_length', async () => {
    for (const flag of ['ban_eos_token', 'use_default_badwordsids']) {
      const { body } = await generate({ prompt: 'Hello', max_length: 5, logit_bias: { [EOS]: 50 }, [flag]: true });
      assert.equal(body.results[0].finish_reason, 'length', flag);
      assert.equal(body.results[0].completion_tokens, 5, flag);
    }
  });

  test('a grammar forces the output', async () => {
    const { body } = await generate({
      prompt: 'Answer:',
      max_length: 10,
      grammar: 'root ::= "yes" | "no"',
      temperature: 1,
      sampler_seed: 5,
    });
    assert.ok(['yes', 'no'].includes(body.results[0].text), body.results[0].text);
    assert.equal(body.results[0].finish_reason, 'stop');
  });

  test('an invalid grammar is a 400 naming the field', async () => {
    const { status, body } = await generate({ prompt: 'x', grammar: 'root ::= ((' });
    assert.equal(status, 400);
    assert.equal(body.detail.field, 'grammar');
  });

  test('stop sequences: trimmed with trim_stop, kept without; finish stop either way', async () => {
    const grammar = 'root ::= "Hello World\\nUser: hi there"';
    const trimmed = (
      await generate({ prompt: 'x', max_length: 30, grammar, stop_sequence: ['\nUser:'], trim_stop: true })
    ).body.results[0];
    assert.deepEqual([trimmed.text, trimmed.finish_reason], ['Hello World', 'stop']);
    const kept = (
      await generate({ prompt: 'x', max_length: 30, grammar, stop_sequence: ['\nUser:'], trim_stop: false })
    ).body.results[0];
    assert.deepEqual([kept.text, kept.finish_reason], ['Hello World\nUser:', 'stop']);
    const single = (await generate({ prompt: 'x', max_length: 30, grammar, stop_sequence: 'World' })).body.results[0];
    assert.equal(single.text, 'Hello ');
  });

  test('a stop sequence that is a single special token stops by id and is not rendered', async () => {
    const imEnd = (
      await postJson(`${server.url}/api/extra/tokencount`, { prompt: '<|im_end|>', special: true })
    ).body.ids.slice(1);
    assert.equal(imEnd.length, 1);
    const { body } = await generate({
      prompt: 'x',
      max_length: 10,
      logit_bias: { [imEnd[0]]: 100 },
      stop_sequence: ['<|im_end|>'],
    });
    assert.deepEqual([body.results[0].text, body.results[0].finish_reason], ['', 'stop']);
  });

  test('logit_bias -100 bans a token (checked on the generated token ids)', async () => {
    const body = { prompt: 'x', max_length: 12, temperature: 0, ban_eos_token: true, logprobs: true };
    const ids = (r: { body: any }) =>
      r.body.results[0].logprobs.content.map((entry: { token_id: number }) => entry.token_id);
    const free: number[] = ids(await generate(body));
    const banned = free[0] as number;
    const after: number[] = ids(await generate({ ...body, logit_bias: { [banned]: -100 } }));
    assert.equal(after.length, 12);
    assert.ok(!after.includes(banned), `${banned} in ${after}`);
    const boosted: number[] = ids(await generate({ ...body, logit_bias: { 300: 100 } }));
    assert.ok(boosted.every((id) => id === 300));
  });

  test('banned_tokens keeps a string out of the tokens generated', async () => {
    const { body } = await generate({
      prompt: 'x',
      max_length: 40,
      temperature: 2,
      sampler_seed: 3,
      ban_eos_token: true,
      banned_tokens: ['e'],
    });
    assert.ok(!body.results[0].text.toLowerCase().includes('e'), body.results[0].text);
  });

  test('memory stays at the front while a long prompt is trimmed token-exactly from its start', async () => {
    const prompt = ' the'.repeat(600);
    const { status, body } = await generate({ prompt, memory: 'Hello World', max_length: 4, ban_eos_token: true });
    assert.equal(status, 200);
    assert.equal(body.results[0].prompt_tokens, 256 - 4);
    const check = await generate({ prompt, max_length: 4, max_context_length: 100, ban_eos_token: true });
    assert.equal(check.body.results[0].prompt_tokens, 96);
  });

  test('every sampler field is accepted, including ones llama.cpp lacks', async () => {
    const { status } = await generate({
      prompt: 'x',
      max_length: 3,
      top_a: 0.2,
      tfs: 0.9,
      typical: 0.9,
      mirostat: 2,
      mirostat_tau: 5,
      mirostat_eta: 0.1,
      dynatemp_range: 0.5,
      dynatemp_exponent: 1,
      smoothing_factor: 0.2,
      sampler_order: [6, 0, 1, 3, 4, 2, 5],
      rep_pen: 1.1,
      rep_pen_range: 64,
      rep_pen_slope: 0.7,
      presence_penalty: 0.2,
      frequency_penalty: 0.1,
      min_p: 0.05,
      top_k: 40,
      top_p: 0.9,
      dry_multiplier: 0.8,
      dry_base: 1.75,
      dry_allowed_length: 2,
      dry_penalty_last_n: 64,
      dry_sequence_breakers: '["\\n", ":"]',
      xtc_threshold: 0.1,
      xtc_probability: 0.5,
      images: [],
      quiet: true,
      n: 1,
      models: [],
      workers: [],
      grammar_retain_state: false,
      custom_token_bans: '5,6',
      nsigma: 0,
    });
    assert.equal(status, 200);
    assert.equal((await generate({ prompt: 'x', max_length: 2, repetition_penalty: 1.3 })).status, 200);
  });

  test('stream: true on the sync endpoint still answers one JSON document', async () => {
    const { status, body, headers } = await generate({ prompt: 'x', max_length: 3, stream: true });
    assert.equal(status, 200);
    assert.match(headers.get('content-type') ?? '', /application\/json/);
    assert.ok(Array.isArray(body.results));
  });

  test('logprobs: true returns top-5 logprobs per token', async () => {
    const { body } = await generate({
      prompt: 'x',
      max_length: 4,
      logprobs: true,
      ban_eos_token: true,
      sampler_seed: 2,
    });
    const content = body.results[0].logprobs.content;
    assert.equal(content.length, 4);
    for (const entry of content) {
      assert.ok(entry.logprob <= 0);
      assert.ok(entry.top_logprobs.length > 0 && entry.top_logprobs.length <= 5);
    }
  });

  test('bad input: not JSON → 400, wrong types → 400 naming the field, never 200 null', async () => {
    const notJson = await generate('this is not json');
    assert.equal(notJson.status, 400);
    assert.equal(notJson.body.detail.type, 'bad_input');
    for (const [body, field] of [
      [{ max_length: 'lots' }, 'max_length'],
      [{ temperature: 'hot' }, 'temperature'],
      [{ logit_bias: { abc: 1 } }, 'logit_bias'],
      [{ prompt: { text: 'x' } }, 'prompt'],
    ] as const) {
      const { status, body: response } = await generate(body);
      assert.equal(status, 400, JSON.stringify(body));
      assert.match(`${response.detail.field} ${response.detail.msg}`, new RegExp(field), JSON.stringify(response));
    }
  });

  test('a body over the limit is 413 with the Kobold message', async () => {
    const small = await startTestServer({ maxBodyBytes: 1024 * 1024 });
    try {
      const { status, body } = await postJson(`${small.url}/api/v1/generate`, { prompt: 'x'.repeat(2 * 1024 * 1024) });
      assert.equal(status, 413);
      assert.equal(body.detail.msg, 'Payload is too big. Max payload size is 1MB.');
    } finally {
      await small.close();
    }
  });
});

describe('banned phrases across tokens (KoboldCpp anti-slop) on the real engine', () => {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer({ contextSize: 512 });
  });
  after(async () => server.close());

  test('"the" made of several tokens is taken back and resampled: it never appears, in the stream or the result', async () => {
    const engine = server.context.engine;
    const bias: Record<string, number> = {};
    for (let id = 0; id < engine.model.vocabularySize; id++) {
      if (['t', 'h', 'e', 'T', 'H', 'E', ' '].includes(engine.detokenize([id], { special: false, context: [100] })))
        bias[id] = 6;
    }
    const body = {
      prompt: 'x',
      max_length: 150,
      ban_eos_token: true,
      temperature: 1,
      sampler_seed: 21,
      logit_bias: bias,
    };
    const free = (await postJson(`${server.url}/api/v1/generate`, body)).body.results[0].text as string;
    assert.match(free.toLowerCase(), /the/, 'without the ban the biased model writes "the"');
    const banned = await postJson(`${server.url}/api/v1/generate`, { ...body, banned_tokens: ['the'], genkey: 'SLOP' });
    const text = banned.body.results[0].text as string;
    assert.doesNotMatch(text.toLowerCase(), /the/);
    assert.equal(banned.body.results[0].completion_tokens, 150);
    const check = await postJson(`${server.url}/api/extra/generate/check`, { genkey: 'SLOP' });
    assert.equal(check.body.results[0].text, text);
  });
});
