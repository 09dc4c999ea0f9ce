import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createClient, HttpStatusError, ProviderStreamError } from '../../src/client/index.ts';
import { within } from '../support/deadline.ts';
import { startFakeOllama } from '../support/fake-providers/fake-ollama.ts';

test('Ollama /api/generate NDJSON: response fields become text; the done line gives usage and done_reason', async (t) => {
  const fake = await startFakeOllama({ tokenCount: 15 });
  t.after(() => fake.close());
  const client = createClient('ollama', { baseUrl: fake.url, model: 'llama3.2:1b' });
  const chunks: string[] = [];
  const stream = client.stream({
    prompt: 'Why is the sky blue?',
    system: 'Short answers.',
    maxTokens: 10,
    temperature: 0.5,
    seed: 3,
    repPen: 1.1,
  });
  for await (const event of within(stream, 120_000, 'the stream to end'))
    if (event.type === 'text') chunks.push(event.text);
  const result = await stream.result;
  assert.equal(chunks.join(''), fake.expectedText(3, 10));
  assert.equal(result.text, chunks.join(''));
  assert.equal(result.stopReason, 'length');
  assert.equal(result.usage?.completionTokens, 10);
  assert.ok((result.usage?.promptTokens ?? 0) > 0);
  assert.deepEqual(fake.requests[0]?.body, {
    model: 'llama3.2:1b',
    prompt: 'Why is the sky blue?',
    system: 'Short answers.',
    stream: true,
    options: { num_predict: 10, temperature: 0.5, repeat_penalty: 1.1, seed: 3 },
  });
});

test('Ollama /api/chat: message.content deltas; stop reason stop', async (t) => {
  const fake = await startFakeOllama({ tokenCount: 9 });
  t.after(() => fake.close());
  const client = createClient('ollama', { baseUrl: `${fake.url}/api`, model: 'qwen2.5:0.5b' });
  const result = await client.generate({ system: 'sys', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(result.text, fake.expectedText(1, 9));
  assert.equal(result.stopReason, 'stop');
  assert.equal(fake.requests[0]?.path, '/api/chat');
  assert.deepEqual((fake.requests[0]?.body as Record<string, unknown> | undefined)?.['messages'], [
    { role: 'system', content: 'sys' },
    { role: 'user', content: 'hi' },
  ]);
});

test('Ollama errors: a 404 body and a mid-stream error line', async (t) => {
  const fake = await startFakeOllama({ tokenCount: 9, errorAfterTokens: 4 });
  t.after(() => fake.close());
  await assert.rejects(
    createClient('ollama', { baseUrl: fake.url, model: 'missing' }).generate({ prompt: 'x' }),
    (error: unknown) => {
      assert.ok(error instanceof HttpStatusError);
      assert.equal(error.status, 404);
      assert.equal(error.providerMessage, 'model "missing" not found, try pulling it first');
      return true;
    },
  );
  await assert.rejects(
    createClient('ollama', { baseUrl: fake.url, model: 'llama3.2:1b' }).generate({ prompt: 'x' }),
    (error: unknown) => {
      assert.ok(error instanceof ProviderStreamError);
      assert.match(error.providerMessage, /unexpected EOF/);
      assert.equal(error.partial?.text, fake.expectedText(1, 4));
      return true;
    },
  );
});

test('Ollama listModels reads /api/tags', async (t) => {
  const fake = await startFakeOllama({ models: ['a:1', 'b:2'] });
  t.after(() => fake.close());
  assert.deepEqual(await createClient('ollama', { baseUrl: fake.url }).listModels(), ['a:1', 'b:2']);
});
