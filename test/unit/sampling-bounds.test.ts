import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Fastify from 'fastify';
import { clampSampling } from '../../src/core/clamp-sampling.ts';
import { KindlingError } from '../../src/core/kindling-error.ts';
import { SAMPLING_LIMITS } from '../../src/core/sampling-limits.ts';
import { DEFAULT_SAMPLING, type SamplingParams } from '../../src/core/sampling-params.ts';
import { topProbabilities } from '../../src/engine/llama/slot-sampler.ts';
import { decodeSampling } from '../../src/protocols/common/sampler-table.ts';
import { normalizeStopSequences } from '../../src/protocols/common/stop-sequences.ts';
import { decodeKoboldGenerate } from '../../src/protocols/kobold/decode.ts';
import { KoboldGenerateBody } from '../../src/protocols/kobold/wire.ts';
import { decodeOllamaGenerate } from '../../src/protocols/ollama/decode.ts';
import { OpenaiCompletionBody } from '../../src/protocols/openai/wire.ts';
import { boundRequest } from '../../src/scheduler/bound-sampling.ts';
import { fromFastifyError } from '../../src/server/request-errors.ts';
import { generationRequest } from '../support/generation-request.ts';

const model = { contextSize: 512, vocabularySize: 1000 };

/** The 400 a call throws: its field and message. */
function badInput(run: () => unknown): { field: string | undefined; message: string } {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof KindlingError, String(error));
    assert.equal(error.status, 400);
    return { field: error.details.field, message: error.message };
  }
  assert.fail('expected a 400');
}

const request = (sampling: SamplingParams, logprobs = 0) =>
  generationRequest('x', { maxTokens: 4, parseSpecialTokens: true, sampling, logprobs });

describe('windows: decoded as KoboldCpp and llama.cpp mean them, clamped to the context', () => {
  test('rep_pen_range / repeat_last_n: -1 is the whole context, 0 is 1, other negatives are a 400', () => {
    assert.equal(decodeSampling({ rep_pen_range: -1 }).repeatPenaltyRange, Number.POSITIVE_INFINITY);
    assert.equal(decodeSampling({ repeat_last_n: -1 }).repeatPenaltyRange, Number.POSITIVE_INFINITY);
    assert.equal(decodeSampling({ rep_pen_range: 0 }).repeatPenaltyRange, 1);
    assert.equal(decodeSampling({ rep_pen_range: '64' }).repeatPenaltyRange, 64);
    assert.equal(decodeSampling({}).repeatPenaltyRange, DEFAULT_SAMPLING.repeatPenaltyRange);
    const bad = badInput(() => decodeSampling({ rep_pen_range: -5 }));
    assert.equal(bad.field, 'rep_pen_range');
    assert.match(bad.message, /-1 for the whole context/);
    assert.equal(badInput(() => decodeSampling({ repeat_last_n: -2 })).field, 'repeat_last_n');
  });

  test('dry_penalty_last_n: 0 and -1 are the whole context (KoboldCpp), other negatives a 400', () => {
    const dry = (n: unknown) => decodeSampling({ dry_multiplier: 0.8, dry_penalty_last_n: n }).dry;
    assert.equal(dry(0)?.penaltyLastN, Number.POSITIVE_INFINITY);
    assert.equal(dry(-1)?.penaltyLastN, Number.POSITIVE_INFINITY);
    assert.equal(dry(100)?.penaltyLastN, 100);
    assert.equal(dry(undefined)?.penaltyLastN, 320);
    assert.equal(badInput(() => dry(-3)).field, 'dry_penalty_last_n');
    assert.equal(
      badInput(() => decodeSampling({ dry_multiplier: 0.8, dry_allowed_length: -1 })).field,
      'dry_allowed_length',
    );
  });

  test('every window larger than the context is the context; top_k larger than the vocabulary is the vocabulary', () => {
    const decoded = decodeSampling({
      rep_pen_range: 1_000_000_000,
      top_k: 1e12,
      dry_multiplier: 0.8,
      dry_penalty_last_n: 1_000_000_000,
      dry_allowed_length: 1e15,
    });
    const s = clampSampling(decoded, model);
    assert.equal(s.repeatPenaltyRange, 512);
    assert.equal(s.topK, 1000);
    assert.equal(s.dry?.penaltyLastN, 512);
    assert.equal(s.dry?.allowedLength, 512);
    const whole = clampSampling(decodeSampling({ rep_pen_range: -1, dry_multiplier: 1, dry_penalty_last_n: 0 }), model);
    assert.equal(whole.repeatPenaltyRange, 512);
    assert.equal(whole.dry?.penaltyLastN, 512);
    assert.equal(clampSampling(decodeSampling({ top_k: -1 }), model).topK, 0, 'top_k below 1 disables it');
  });

  test('the scheduler bound clamps the request and its logprobs; the clamp is idempotent', () => {
    const bounded = boundRequest(request(decodeSampling({ rep_pen_range: 1e9 }), 1e9), model);
    assert.equal(bounded.sampling.repeatPenaltyRange, 512);
    assert.equal(bounded.logprobs, SAMPLING_LIMITS.logprobs);
    assert.deepEqual(clampSampling(bounded.sampling, model), bounded.sampling);
  });
});

describe('token ids: integers 0..vocabulary-1, or a 400 naming the id and the range', () => {
  test('logit_bias ids past the vocabulary (4294967464 would wrap to 168) and id == vocabulary are a 400', () => {
    for (const id of ['4294967464', '1000']) {
      const bad = badInput(() => boundRequest(request(decodeSampling({ logit_bias: { [id]: 5 } })), model));
      assert.equal(bad.field, 'logit_bias');
      assert.match(bad.message, new RegExp(`token id ${id} is outside the vocabulary \\(0\\.\\.999\\)`));
    }
    const ok = boundRequest(request(decodeSampling({ logit_bias: { '999': 5, '3': -100 } })), model);
    assert.equal(ok.sampling.logitBias.get(999), 5);
    assert.equal(ok.sampling.logitBias.get(3), Number.NEGATIVE_INFINITY);
  });

  test('a key that is not a decimal integer, or a bias that is not a number, is a 400', () => {
    for (const key of ['abc', '', '-1', '1e3', '1.5', ' 7', '99999999999999999999']) {
      const bad = badInput(() => decodeSampling({ logit_bias: { [key]: 1 } }));
      assert.equal(bad.field, 'logit_bias', key);
      assert.match(bad.message, /is not a token id/);
    }
    for (const bias of ['5', null, true, {}]) {
      assert.match(badInput(() => decodeSampling({ logit_bias: { '5': bias } })).message, /must be a number/);
    }
    assert.equal(badInput(() => decodeSampling({ logit_bias: [1, 2] })).field, 'logit_bias');
  });

  test(`logit_bias: at most ${SAMPLING_LIMITS.logitBias} entries; bias clamped to ±100`, () => {
    const entries = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [String(i), 1]));
    assert.equal(decodeSampling({ logit_bias: entries(512) }).logitBias.size, 512);
    assert.match(badInput(() => decodeSampling({ logit_bias: entries(513) })).message, /at most 512/);
    assert.equal(decodeSampling({ logit_bias: { '1': 1e9 } }).logitBias.get(1), 100);
  });

  test('custom_token_bans: "id,id" with spaces; a non-id or an id past the vocabulary is a 400', () => {
    assert.deepEqual(decodeSampling({ custom_token_bans: '1, 2,,3 ' }).bannedTokenIds, [1, 2, 3]);
    assert.equal(badInput(() => decodeSampling({ custom_token_bans: '1,x' })).field, 'custom_token_bans');
    assert.equal(badInput(() => decodeSampling({ custom_token_bans: 5 })).field, 'custom_token_bans');
    const bad = badInput(() => boundRequest(request(decodeSampling({ custom_token_bans: '5,1000' })), model));
    assert.equal(bad.field, 'custom_token_bans');
    assert.match(bad.message, /token id 1000 is outside the vocabulary \(0\.\.999\)/);
  });

  test('the engine never reports more than 20 alternatives per token, however many are asked for', () => {
    const candidates = Array.from({ length: 200 }, (_, i) => [i, 1 / (i + 2)]).flat();
    assert.equal(topProbabilities(0, candidates, 1e9).top.length, SAMPLING_LIMITS.logprobs);
    assert.equal(topProbabilities(0, candidates, 3).top.length, 3);
  });

  test('the engine-side clamp drops ids outside the vocabulary whatever reaches it', () => {
    const s = clampSampling(
      {
        ...DEFAULT_SAMPLING,
        logitBias: new Map([
          [5000, 1],
          [-1, 1],
          [7, 2],
        ]),
        bannedTokenIds: [1, 4000],
      },
      model,
    );
    assert.deepEqual([...s.logitBias.keys()], [7]);
    assert.deepEqual(s.bannedTokenIds, [1]);
  });
});

describe('lists: counts and lengths', () => {
  test('stop strings: a string is one stop, nulls are skipped, 256 at most, 500 characters each', () => {
    assert.deepEqual(normalizeStopSequences('\n\n', 'stop_sequence'), ['\n\n']);
    assert.deepEqual(normalizeStopSequences(['a', null, '', 'b']), ['a', 'b']);
    assert.equal(normalizeStopSequences(Array(256).fill('x')).length, 256);
    assert.match(badInput(() => normalizeStopSequences(Array(257).fill('x'), 'stop')).message, /at most 256/);
    const long = badInput(() => normalizeStopSequences(['ok', 'x'.repeat(501)], 'stop_sequences'));
    assert.equal(long.field, 'stop_sequences[1]');
    assert.equal(badInput(() => normalizeStopSequences(5, 'stop')).field, 'stop');
    assert.equal(badInput(() => normalizeStopSequences(['a', 5], 'stop')).field, 'stop[1]');
  });

  test('banned_tokens / banned_strings: a list of strings, 768 at most, 500 characters each', () => {
    assert.deepEqual(decodeSampling({ banned_strings: ['a', ''] }).bannedStrings, ['a']);
    assert.equal(decodeSampling({ banned_tokens: Array(768).fill('x') }).bannedStrings.length, 768);
    assert.match(badInput(() => decodeSampling({ banned_tokens: Array(769).fill('x') })).message, /at most 768/);
    assert.equal(badInput(() => decodeSampling({ banned_tokens: ['x'.repeat(501)] })).field, 'banned_tokens[0]');
    assert.equal(badInput(() => decodeSampling({ banned_tokens: [1] })).field, 'banned_tokens[0]');
    assert.equal(badInput(() => decodeSampling({ banned_strings: 'the' })).field, 'banned_strings');
  });

  test('dry_sequence_breakers: a list or a JSON-encoded list; 128 at most; each cut to 40 characters', () => {
    const breakers = (value: unknown) =>
      decodeSampling({ dry_multiplier: 0.8, dry_sequence_breakers: value }).dry?.sequenceBreakers;
    assert.deepEqual(breakers(undefined), ['\n', ':', '"', '*']);
    assert.deepEqual(breakers('["\\n", "*"]'), ['\n', '*']);
    assert.deepEqual(breakers([]), []);
    assert.deepEqual(breakers(['y'.repeat(60)]), ['y'.repeat(40)]);
    assert.equal(breakers(Array(128).fill('x'))?.length, 128);
    assert.match(badInput(() => breakers(Array(129).fill('x'))).message, /at most 128/);
    assert.equal(badInput(() => breakers('not json')).field, 'dry_sequence_breakers');
    assert.equal(badInput(() => breakers([1])).field, 'dry_sequence_breakers');
  });
});

describe('types: the Kobold coercions we keep, and nothing else', () => {
  test('numeric strings are read as numbers in Kobold fields; anything else not a number is a 400', () => {
    const request = decodeKoboldGenerate(
      { prompt: 'x', max_length: '12', max_context_length: ' 256 ', temperature: '0.5', top_k: '40' } as never,
      { maxLength: 80 },
    );
    assert.equal(request.maxTokens, 12);
    assert.equal(request.maxContextTokens, 256);
    assert.equal(request.sampling.temperature, 0.5);
    assert.equal(request.sampling.topK, 40);
    for (const value of ['hot', '0x10', 'Infinity', '', true, {}]) {
      assert.equal(badInput(() => decodeSampling({ temperature: value })).field, 'temperature', String(value));
    }
  });

  test('Ollama repeat_last_n 0 turns the penalties off (as in Ollama), -1 is the whole context', () => {
    const template = { kind: 'fallback' } as never;
    const options = { defaultMaxTokens: 8, contextSize: 512 };
    const off = decodeOllamaGenerate(
      { prompt: 'x', raw: true, options: { repeat_last_n: 0, repeat_penalty: 1.3, presence_penalty: 0.5 } },
      template,
      options,
    ).sampling;
    assert.equal(off.repeatPenalty, 1);
    assert.equal(off.presencePenalty, 0);
    const whole = decodeOllamaGenerate(
      { prompt: 'x', raw: true, options: { repeat_last_n: -1, repeat_penalty: 1.3 } },
      template,
      options,
    ).sampling;
    assert.equal(whole.repeatPenaltyRange, Number.POSITIVE_INFINITY);
    assert.equal(whole.repeatPenalty, 1.3);
  });

  test('schema errors name the field and say what is accepted (Fastify and Ajv as the server runs them)', async () => {
    const app = Fastify({ ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } } });
    app.setErrorHandler((error, _request, reply) => {
      reply.status(400).send({ message: fromFastifyError(error).message });
    });
    app.post('/kobold', { schema: { body: KoboldGenerateBody } }, async () => ({ ok: true }));
    app.post('/completion', { schema: { body: OpenaiCompletionBody } }, async () => ({ ok: true }));
    const send = async (url: string, body: unknown) => {
      const response = await app.inject({ method: 'POST', url, payload: body as object });
      return { status: response.statusCode, message: response.json().message as string | undefined };
    };
    const error = async (url: string, body: unknown) => {
      const { status, message } = await send(url, body);
      assert.equal(status, 400, JSON.stringify(body));
      return message;
    };
    try {
      assert.equal(await error('/kobold', { prompt: 123 }), 'prompt: expected a string');
      assert.equal(await error('/kobold', { trim_stop: 'yes' }), 'trim_stop: expected a boolean (true or false)');
      assert.equal(
        await error('/kobold', { temperature: 'hot' }),
        'temperature: expected a number, a number in a string or null',
      );
      assert.equal(
        await error('/kobold', { max_length: 1.5 }),
        'max_length: expected an integer, an integer in a string or null',
      );
      assert.equal(await error('/kobold', { stop_sequence: 5 }), 'stop_sequence: expected a string or a list');
      assert.equal(await error('/kobold', { stop_sequence: ['a', 5] }), 'stop_sequence[1]: expected a string or null');
      assert.equal(await error('/kobold', { stop_sequence: 'x'.repeat(501) }), 'stop_sequence: at most 500 characters');
      assert.equal(await error('/kobold', { logit_bias: { '5': 'x' } }), 'logit_bias[5]: expected a number');
      assert.equal(await error('/kobold', { banned_tokens: Array(769).fill('x') }), 'banned_tokens: at most 768 items');
      assert.equal(await error('/completion', { logprobs: 6 }), 'logprobs: must be <= 5');
      // The kept coercions pass the schema.
      for (const body of [
        { stop_sequence: 'END' },
        { stop_sequence: ['END', null] },
        { temperature: '0.7', max_length: '20', sampler_seed: null },
        { dry_sequence_breakers: '["\\n"]' },
      ])
        assert.equal((await send('/kobold', body)).status, 200, JSON.stringify(body));
    } finally {
      await app.close();
    }
  });
});
