import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../../src/main.ts';
import { waitUntil } from '../support/deadline.ts';
import { bearer, keyFile, testKey } from '../support/key-file.ts';
import { openStream } from '../support/sse-capture.ts';
import { slowTestModelPath } from '../support/test-model.ts';
import { banEndTokens, getJson, startTestServer } from '../support/test-server.ts';

describe('GET /slots: each slot for the operator (real server, real model)', () => {
  let server: RunningServer;
  before(async () => {
    const keys = keyFile([
      { name: 'ops', key: testKey('ops'), admin: true },
      { name: 'alice', key: testKey('alice') },
    ]);
    server = await startTestServer({ apiKeysPath: keys.path, modelPath: slowTestModelPath(), parallel: 2 });
  });
  after(async () => server.close());

  test("an admin key sees a running generation by its key's name, its tokens and its age; no prompt text", async () => {
    const stream = await openStream(
      `${server.url}/api/extra/generate/stream`,
      { prompt: 'A secret prompt', max_length: 300, logit_bias: banEndTokens(server) },
      bearer('alice'),
    );
    let slots: any[] = [];
    await waitUntil(
      async () => {
        slots = (await getJson(`${server.url}/slots`, bearer('ops'))).body;
        return slots.some((s) => s.state === 'generating' && s.next_token.n_decoded > 0);
      },
      30_000,
      'a generating slot',
    );
    assert.equal(slots.length, 2);
    const busy = slots.find((s) => s.is_processing);
    assert.equal(busy.key, 'alice');
    assert.ok(busy.n_prompt_tokens > 0 && busy.elapsed_ms >= 0);
    assert.equal(busy.n_ctx, server.context.engine.model.contextSize);
    assert.deepEqual(
      slots.filter((s) => !s.is_processing),
      [{ id: slots.find((s) => !s.is_processing).id, n_ctx: busy.n_ctx, is_processing: false, state: 'idle' }],
    );
    assert.ok(!JSON.stringify(slots).includes('secret'), 'no prompt text');
    assert.ok(!JSON.stringify(slots).includes(testKey('alice')), 'a key is its name');
    await stream.cancel();
  });

  test('a key that is not admin gets a 403; no key, a 401', async () => {
    const forbidden = await getJson(`${server.url}/slots`, bearer('alice'));
    assert.equal(forbidden.status, 403);
    assert.match(forbidden.body.detail.msg, /admin/);
    assert.equal((await getJson(`${server.url}/slots`)).status, 401);
  });
});
