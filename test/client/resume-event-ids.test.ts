import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createClient } from '../../src/client/index.ts';
import { startFakeHttpServer, startSse, write } from '../support/fake-providers/fake-http-server.ts';

const chunk = (choices: unknown[], usage?: unknown) =>
  JSON.stringify({ id: 'c', object: 'chat.completion.chunk', choices, ...(usage ? { usage } : {}) });

test('our fractional event ids: a cut after the finish chunk resumes from its id, and a replay of it is dropped', async (t) => {
  // Our server numbers a part's group N-1.1, N-1.2, …, N. This one replays the event the client named once more
  // (as a misbehaving server might), with different text, so a client that did not drop it would show it.
  const fake = await startFakeHttpServer(async (request, _req, res) => {
    startSse(res);
    if (request.headers['last-event-id'] === undefined) {
      await write(res, `id: 1\ndata: ${chunk([{ index: 0, delta: { role: 'assistant', content: '' } }])}\n\n`);
      await write(res, `id: 2\ndata: ${chunk([{ index: 0, delta: { content: 'Hello' } }])}\n\n`);
      await write(res, `id: 2.1\ndata: ${chunk([{ index: 0, delta: {}, finish_reason: 'stop' }])}\n\n`);
      res.end();
      return;
    }
    await write(
      res,
      `id: 2.1\ndata: ${chunk([{ index: 0, delta: { content: ' again' }, finish_reason: 'stop' }])}\n\n`,
    );
    await write(res, `id: 2.2\ndata: ${chunk([], { prompt_tokens: 3, completion_tokens: 1 })}\n\n`);
    await write(res, 'id: 3\ndata: [DONE]\n\n');
    res.end();
  });
  t.after(() => fake.close());
  const client = createClient('openai', { baseUrl: fake.url, model: 'm', resume: true, retry: { baseDelayMs: 1 } });
  const result = await client.generate({ messages: [{ role: 'user', content: 'x' }] });
  assert.equal(fake.requests.length, 2);
  assert.equal(fake.requests[1]?.headers['last-event-id'], '2.1');
  assert.equal(result.text, 'Hello');
  assert.equal(result.stopReason, 'stop');
  assert.deepEqual(result.usage, { promptTokens: 3, completionTokens: 1 });
});
