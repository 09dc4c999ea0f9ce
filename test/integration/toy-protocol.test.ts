import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../../src/main.ts';
import { PROTOCOLS } from '../../src/protocols/registry.ts';
import { toyProtocol } from '../fixtures/toy-protocol/protocol.ts';
import { getJson, postJson, startTestServer } from '../support/test-server.ts';

/**
 * The proof that adding a protocol is adding one folder: test/fixtures/toy-protocol/ is a whole protocol, and
 * the line below that lists it beside the registry's is all the server learns of it. Its streaming route then
 * works like every other protocol's (the one pipeline), and its errors come in its own envelope.
 */
describe('a protocol added as one folder and one registry line', () => {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer({}, [...PROTOCOLS, toyProtocol]);
  });
  after(async () => server.close());

  test('its streaming route streams a real generation in its own wire shape', async () => {
    const response = await fetch(`${server.url}/toy/say`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ say: 'Once upon a time', tokens: 6 }),
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^application\/x-ndjson/);
    assert.match(response.headers.get('x-kindling-generation') ?? '', /^kg-/);
    const lines = (await response.text())
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    assert.deepEqual(lines.at(-1), { end: 'max-tokens' });
    const text = lines
      .slice(0, -1)
      .map((line) => line.t)
      .join('');
    assert.ok(text.length > 0, 'the tokens came as {"t"} lines');
    // Greedy sampling: the waiting form of the same route says the same text.
    const whole = await postJson(`${server.url}/toy/say`, { say: 'Once upon a time', tokens: 6, stream: false });
    assert.equal(whole.status, 200);
    assert.deepEqual(whole.body, { said: text, end: 'max-tokens' });
  });

  test('its info route answers, and it is in the OpenAPI document under its tag', async () => {
    const about = await getJson(`${server.url}/toy/about`);
    assert.equal(about.status, 200);
    assert.equal(about.body.toy_model, server.context.engine.model.name);
    const doc = await getJson(`${server.url}/api/openapi.json`);
    assert.deepEqual(doc.body.paths['/toy/say'].post.tags, ['Toy']);
  });

  test('its errors, validation and 404s alike, come in its own envelope', async () => {
    const bad = await postJson(`${server.url}/toy/say`, { tokens: 3 });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.status, 400);
    assert.match(bad.body.toy_error, /say/);
    const missing = await getJson(`${server.url}/toy/nothing-here`);
    assert.equal(missing.status, 404);
    assert.match(missing.body.toy_error, /not an endpoint/);
  });

  test('the other protocols are untouched beside it', async () => {
    const kobold = await getJson(`${server.url}/api/v1/model`);
    assert.equal(kobold.status, 200);
    const openai = await getJson(`${server.url}/v1/nothing-here`);
    assert.equal(openai.status, 404);
    assert.equal(typeof openai.body.error.message, 'string');
  });
});
