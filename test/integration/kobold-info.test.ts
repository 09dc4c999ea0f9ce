import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../../src/main.ts';
import { getJson, postJson, startTestServer } from '../support/test-server.ts';

describe('Kobold info endpoints (real server, real model)', () => {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer({ contextSize: 1024 });
  });
  after(async () => server.close());

  test('GET /api/v1/model names the model the KoboldCpp way', async () => {
    const { status, body, headers } = await getJson(`${server.url}/api/v1/model`);
    assert.equal(status, 200);
    assert.match(headers.get('content-type') ?? '', /application\/json/);
    assert.equal(body.result, `koboldcpp/${server.context.engine.model.name}`);
    assert.equal(headers.get('cache-control'), 'no-store');
  });

  test('trailing slash and /api/latest alias work', async () => {
    assert.equal(
      (await getJson(`${server.url}/api/v1/model/`)).body.result,
      `koboldcpp/${server.context.engine.model.name}`,
    );
    assert.equal((await getJson(`${server.url}/api/latest/model`)).status, 200);
  });

  test('version endpoints report a KoboldCpp-compatible version Lite can compare', async () => {
    assert.deepEqual((await getJson(`${server.url}/api/v1/info/version`)).body, { result: '1.2.5' });
    const { body } = await getJson(`${server.url}/api/extra/version`);
    assert.equal(body.result, 'KoboldCpp');
    assert.ok(Number.parseFloat(body.version) >= 1.76);
    for (const key of ['protected', 'txt2img', 'vision', 'transcribe']) assert.equal(typeof body[key], 'boolean');
    assert.equal(body.protected, false);
    assert.ok(body.ignored_samplers.includes('mirostat'));
  });

  test('context endpoints report the real context size', async () => {
    assert.deepEqual((await getJson(`${server.url}/api/extra/true_max_context_length`)).body, { value: 1024 });
    assert.deepEqual((await getJson(`${server.url}/api/v1/config/max_context_length`)).body, { value: 1024 });
    const maxLength = (await getJson(`${server.url}/api/v1/config/max_length`)).body.value;
    assert.ok(Number.isInteger(maxLength) && maxLength > 0 && maxLength <= 1024);
  });

  test('perf while idle has numeric figures, idle 1 and queue 0', async () => {
    const { body } = await getJson(`${server.url}/api/extra/perf`);
    assert.equal(body.idle, 1);
    assert.equal(body.queue, 0);
    for (const key of ['last_process', 'last_eval', 'last_token_count', 'total_gens', 'uptime'])
      assert.equal(typeof body[key], 'number');
    assert.ok([-1, 0, 1, 2].includes(body.stop_reason));
  });

  test('perf reports real figures after a generation', async () => {
    await postJson(`${server.url}/api/v1/generate`, {
      prompt: 'Once upon a time',
      max_length: 12,
      sampler_seed: 9,
      use_default_badwordsids: true,
    });
    const { body } = await getJson(`${server.url}/api/extra/perf`);
    assert.ok(body.total_gens >= 1);
    assert.equal(body.last_token_count, 12);
    assert.equal(body.last_seed, 9);
    assert.equal(body.stop_reason, 0);
    assert.ok(body.last_eval > 0 && body.last_eval_speed > 0);
  });

  test('preloadstory without a story is {}', async () => {
    assert.deepEqual((await getJson(`${server.url}/api/extra/preloadstory`)).body, {});
  });

  test('unknown routes are a 404 in the Kobold envelope', async () => {
    const { status, body } = await getJson(`${server.url}/nonexistent`);
    assert.equal(status, 404);
    assert.equal(body.detail.type, 'not_found');
    const post = await postJson(`${server.url}/api/v1/nonexistent`, {});
    assert.equal(post.status, 404);
  });

  test('CORS preflight answers 200 with Authorization and genkey allowed', async () => {
    const response = await fetch(`${server.url}/api/v1/generate`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://lite.koboldai.net',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,genkey',
      },
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('access-control-allow-origin'), 'https://lite.koboldai.net');
    const allowed = (response.headers.get('access-control-allow-headers') ?? '').toLowerCase();
    assert.ok(allowed.includes('authorization') && allowed.includes('genkey'));
  });

  test('/api is a readable page listing the endpoints, with the OpenAPI document beside it', async () => {
    const page = await fetch(`${server.url}/api`);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    const html = await page.text();
    assert.ok(html.includes('/api/extra/generate/stream'));
    const { body } = await getJson(`${server.url}/api/openapi.json`);
    assert.match(body.openapi, /^3\./);
    assert.ok(body.paths['/api/v1/generate'].post.requestBody);
  });

  test('serviceinfo and props describe the server', async () => {
    const info = (await getJson(`${server.url}/.well-known/serviceinfo`)).body;
    assert.equal(info.api.koboldai.rel_url, '/api');
    const props = (await getJson(`${server.url}/props`)).body;
    assert.equal(props.n_ctx, 1024);
    assert.equal(props.default_generation_settings.n_ctx, 1024);
  });

  test('tokencount, tokenize and detokenize round-trip', async () => {
    const counted = (await postJson(`${server.url}/api/extra/tokencount`, { prompt: 'Hello world' })).body;
    assert.equal(counted.value, counted.ids.length);
    assert.equal(counted.ids[0], server.context.engine.bosToken);
    const plain = (await postJson(`${server.url}/api/extra/tokenize`, { prompt: 'Hello world', special: false })).body;
    assert.deepEqual(plain.ids, counted.ids.slice(1));
    const back = (await postJson(`${server.url}/api/extra/detokenize`, { ids: plain.ids })).body;
    assert.deepEqual(back, { result: 'Hello world', success: true });
  });

  test('tokencount with bad JSON is 400 with value -1', async () => {
    const { status, body } = await postJson(`${server.url}/api/extra/tokencount`, '{nope');
    assert.equal(status, 400);
    assert.equal(body.value, -1);
    assert.equal(body.detail.type, 'bad_input');
  });

  test('detokenize rejects ids outside the vocabulary', async () => {
    const { status, body } = await postJson(`${server.url}/api/extra/detokenize`, { ids: [1, 999999] });
    assert.equal(status, 400);
    assert.match(body.detail.msg, /999999/);
  });

  test('json_to_grammar turns a JSON schema into GBNF', async () => {
    const { status, body } = await postJson(`${server.url}/api/extra/json_to_grammar`, {
      schema: { type: 'object', properties: { a: { type: 'integer' } }, required: ['a'] },
    });
    assert.equal(status, 200);
    assert.equal(body.success, true);
    assert.match(body.result, /root\s*::=/);
  });
});

describe('Kobold auth with --password', () => {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer({ password: 's3cret' });
  });
  after(async () => server.close());

  test('model name is hidden without the key and shown with it', async () => {
    assert.equal((await getJson(`${server.url}/api/v1/model`)).body.result, 'koboldcpp/protected-model');
    const authed = await getJson(`${server.url}/api/v1/model`, { authorization: 'Bearer s3cret' });
    assert.equal(authed.body.result, `koboldcpp/${server.context.engine.model.name}`);
    assert.equal((await getJson(`${server.url}/api/extra/version`)).body.protected, true);
  });

  test('secured endpoints answer 401 in the Kobold envelope without the key', async () => {
    for (const path of [
      '/api/v1/generate',
      '/api/extra/generate/stream',
      '/api/extra/generate/check',
      '/api/extra/abort',
      '/api/extra/tokencount',
    ]) {
      const { status, body } = await postJson(`${server.url}${path}`, { prompt: 'x', max_length: 1 });
      assert.equal(status, 401, path);
      assert.deepEqual(body.detail, {
        msg: 'Authentication key is missing or invalid.',
        type: 'unauthorized',
        error: 'Unauthorized',
      });
    }
    assert.equal((await getJson(`${server.url}/api/extra/perf`)).status, 200);
  });

  test('the key works as Bearer, x-api-key and apikey', async () => {
    for (const headers of [
      { authorization: 'Bearer s3cret' },
      { 'x-api-key': 's3cret' },
      { apikey: 's3cret' },
    ] as Record<string, string>[]) {
      const { status } = await postJson(`${server.url}/api/extra/tokencount`, { prompt: 'hi' }, headers);
      assert.equal(status, 200, JSON.stringify(headers));
    }
    assert.equal(
      (await postJson(`${server.url}/api/extra/tokencount`, { prompt: 'hi' }, { authorization: 'Bearer wrong' }))
        .status,
      401,
    );
  });
});
