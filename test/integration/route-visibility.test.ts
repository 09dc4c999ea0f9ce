import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import type { RunningServer } from '../../src/main.ts';
import { registeredRoutes } from '../../src/server/app.ts';
import { requestFrom } from '../support/from-address.ts';
import { startTestServer } from '../support/test-server.ts';

const PASSWORD = 's3cret';
const SEED = 987654321;
const PROMPT = 'Zebracorn midnight plan';
const AUTH = { authorization: `Bearer ${PASSWORD}` };

/** Activity fields of /api/extra/perf as an anonymous caller must see them: an idle server that never ran. */
const NEUTRAL_PERF = {
  last_process: 0,
  last_eval: 0,
  last_token_count: 0,
  last_input_count: 0,
  last_process_time: 0,
  last_eval_time: 0,
  last_process_speed: 0,
  last_eval_speed: 0,
  last_seed: 0,
  total_gens: 0,
  stop_reason: -1,
  queue: 0,
  idle: 1,
  idletime: 0,
  slots_busy: 0,
  prompt_tokens_evaluated: 0,
  prompt_tokens_reused: 0,
  tokens_generated: 0,
  decode_batches: 0,
  batched_sequences: 0,
  thread_pools: 0,
};

/**
 * Every route an anonymous caller of a `--password` server may reach, with what it may show. Anything not
 * listed must answer 401; a new open route fails the sweep until it is reviewed and listed here.
 */
const OPEN_ROUTES: Record<string, string> = {
  'OPTIONS *': 'CORS preflight: allowed methods and headers only',
  '/api/v1/model': 'koboldcpp/protected-model, never the name',
  '/api/latest/model': 'koboldcpp/protected-model, never the name',
  '/api/v1/info/version': 'the KoboldAI API level',
  '/api/latest/info/version': 'the KoboldAI API level',
  '/api/v1/config/max_length': 'a limit derived from the context size',
  '/api/latest/config/max_length': 'a limit derived from the context size',
  '/api/v1/config/max_context_length': 'the context size',
  '/api/latest/config/max_context_length': 'the context size',
  '/api/v1/config/soft_prompt': 'empty',
  '/api/latest/config/soft_prompt': 'empty',
  '/api/v1/config/soft_prompts_list': 'empty',
  '/api/latest/config/soft_prompts_list': 'empty',
  '/api/extra/true_max_context_length': 'the context size',
  '/api/extra/version': 'versions, capabilities and protected: true (so clients ask for the key)',
  '/api/extra/perf': 'uptime and slot count; every activity field neutral (NEUTRAL_PERF)',
  '/api/extra/preloadstory': "the operator's --preloadstory file (none here: {})",
  '/api/version': 'the Ollama API level',
  '/api/openapi.json': 'the route list and schemas',
  '/api': 'the route list, context and slots; the model as protected-model',
  '/.well-known/serviceinfo': 'software name and version',
  '/props': 'context and slots; model_path protected-model, no chat template',
  '/': 'the web client (static)',
  '/health': 'status ok or draining only (the slot figures need the key)',
};

describe('open routes of a --password server show an anonymous caller nothing of the model or of anyone’s activity', () => {
  let server: RunningServer;
  let generated = '';
  before(async () => {
    server = await startTestServer({ password: PASSWORD });
    // Another user's activity, which nothing below may show an anonymous caller.
    const own = await requestFrom('127.0.0.1', `${server.url}/api/v1/generate`, {
      body: { prompt: PROMPT, max_length: 12, sampler_seed: SEED, ban_eos_token: true },
      headers: AUTH,
    });
    assert.equal(own.status, 200);
    generated = own.json.results[0].text;
  });
  after(async () => server.close());

  /** What must not appear in any anonymous answer. */
  const secrets = () => {
    const model = server.context.engine.model;
    const list = [model.name, model.path, PROMPT, String(SEED)];
    // The random model's text is short noise; only a long enough piece is a meaningful needle.
    if (generated.trim().length >= 8) list.push(generated.trim());
    return list;
  };

  test('an authorized caller does see the model and the activity (so the sweep below checks something)', async () => {
    const name = server.context.engine.model.name;
    assert.equal(
      (await requestFrom('127.0.0.1', `${server.url}/api/v1/model`, { headers: AUTH })).json.result,
      `koboldcpp/${name}`,
    );
    assert.equal((await requestFrom('127.0.0.1', `${server.url}/props`, { headers: AUTH })).json.model_path, name);
    assert.match((await requestFrom('127.0.0.1', `${server.url}/api`, { headers: AUTH })).text, new RegExp(name));
    const perf = (await requestFrom('127.0.0.1', `${server.url}/api/extra/perf`, { headers: AUTH })).json;
    assert.equal(perf.last_seed, SEED);
    assert.ok(perf.total_gens >= 1 && perf.last_token_count > 0);
  });

  test('every registered route: 401, or an allow-listed open route that shows nothing of the model or activity', async () => {
    const routes = registeredRoutes(server.app);
    assert.ok(routes.length > 40, `collected ${routes.length} routes`);
    const swept = new Set<string>();
    for (const route of routes) {
      const path = route.url.replace(/:[^/]+/g, 'x');
      const name = route.method === 'OPTIONS' ? `OPTIONS ${route.url}` : route.url;
      swept.add(name);
      const hasBody = route.method === 'POST' || route.method === 'PUT';
      const response = await requestFrom('127.0.0.2', `${server.url}${path === '*' ? '/api/v1/generate' : path}`, {
        method: route.method,
        ...(hasBody ? { body: {} } : {}),
        headers:
          route.method === 'OPTIONS' ? { origin: 'http://elsewhere', 'access-control-request-method': 'POST' } : {},
      });
      const label = `${route.method} ${route.url}`;
      if (!(name in OPEN_ROUTES)) {
        assert.equal(response.status, 401, `${label} must need the key (or be reviewed and allow-listed)`);
        continue;
      }
      assert.ok(response.status < 400, `${label}: ${response.status}`);
      const seen = `${JSON.stringify(response.headers)}\n${response.text}`;
      for (const secret of secrets()) assert.ok(!seen.includes(secret), `${label} shows ${JSON.stringify(secret)}`);
      if (route.method !== 'GET') continue;
      if (route.url.endsWith('/model')) assert.deepEqual(response.json, { result: 'koboldcpp/protected-model' });
      if (route.url === '/api/extra/perf') {
        for (const [field, value] of Object.entries(NEUTRAL_PERF))
          assert.equal(response.json[field], value, `perf.${field} is neutral for an anonymous caller`);
      }
      if (route.url === '/props') {
        assert.equal(response.json.model_path, 'protected-model');
        assert.equal(response.json.chat_template, null);
      }
      if (route.url === '/api') assert.match(response.text, /protected-model/);
    }
    for (const listed of Object.keys(OPEN_ROUTES))
      assert.ok(swept.has(listed), `${listed} is allow-listed but not registered`);
  });

  test('?apikey= opens the WebSocket handshake only, never a plain HTTP route sent an Upgrade header', async () => {
    for (const upgrade of ['websocket', 'h2c', 'anything']) {
      for (const [method, path] of [
        ['GET', '/v1/models'],
        ['POST', '/api/extra/generate/check'],
        ['GET', '/api/extra/generate/check'],
      ] as const) {
        const response = await requestFrom('127.0.0.2', `${server.url}${path}?apikey=${PASSWORD}`, {
          method,
          ...(method === 'POST' ? { body: {} } : {}),
          headers: { upgrade, connection: 'upgrade' },
        });
        assert.equal(response.status, 401, `${method} ${path} with Upgrade: ${upgrade}`);
      }
    }
    const wsUrl = `${server.url.replace('http', 'ws')}/api/extra/generate/ws`;
    const open = (url: string) =>
      new Promise<number>((resolve) => {
        const socket = new WebSocket(url);
        socket.once('open', () => {
          socket.close();
          resolve(101);
        });
        socket.once('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
        socket.once('error', () => resolve(0));
      });
    assert.equal(await open(wsUrl), 401, 'no key: no WebSocket');
    assert.equal(await open(`${wsUrl}?apikey=wrong`), 401);
    assert.equal(await open(`${wsUrl}?apikey=${PASSWORD}`), 101, 'the handshake takes ?apikey=');
  });
});
