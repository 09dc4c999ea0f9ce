import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { TINY_LLAMA, writeRandomLlamaModel } from '../../src/gguf/random-llama-model.ts';
import type { RunningServer } from '../../src/main.ts';
import { TEST_TMP, testModelPath } from '../support/test-model.ts';
import { postJson, startTestServer } from '../support/test-server.ts';

/** A tiny model that declares mean pooling, as embedding GGUFs do: /v1/embeddings and /api/embed answer with vectors. */
function embeddingModelPath(): string {
  testModelPath(); // makes sure the folder exists
  const path = join(TEST_TMP, 'tiny-F16-pooling-mean-v1.gguf');
  if (existsSync(path)) return path;
  writeRandomLlamaModel(path, {
    type: 'F16',
    seed: 88,
    extraMetadata: [['llama.pooling_type', { type: 'uint32', value: 1 }]],
  });
  return path;
}

let server: RunningServer;
let client: OpenAI;
before(async () => {
  server = await startTestServer({ modelPath: embeddingModelPath() });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
after(() => server.close());

test('openai SDK embeddings (base64 by default, decoded by the SDK) and float vectors agree', async () => {
  const result = await client.embeddings.create({ model: 'any', input: ['Once upon a time', 'Hello world'] });
  assert.equal(result.object, 'list');
  assert.equal(result.data.length, 2);
  const [a, b] = result.data.map((d) => d.embedding);
  assert.equal(a?.length, TINY_LLAMA.embeddingLength);
  assert.notDeepEqual(a, b);
  assert.ok(result.usage.prompt_tokens > 0);
  const float = await client.embeddings.create({ model: 'any', input: 'Once upon a time', encoding_format: 'float' });
  const floatVector = float.data[0]?.embedding ?? [];
  // base64 carries float32: equal to the float answer within float32 precision.
  assert.ok(floatVector.every((value, i) => Math.abs(value - (a?.[i] ?? Number.NaN)) < 1e-6));
});

test('Ollama /api/embed and /api/embeddings, and the capability is reported', async () => {
  const embed = await postJson(`${server.url}/api/embed`, { model: 'x', input: ['Hi', 'Hello'] });
  assert.equal(embed.status, 200);
  assert.equal(embed.body.embeddings.length, 2);
  assert.equal(embed.body.embeddings[0].length, TINY_LLAMA.embeddingLength);
  const old = await postJson(`${server.url}/api/embeddings`, { model: 'x', prompt: 'Hi' });
  assert.deepEqual(old.body.embedding, embed.body.embeddings[0]);
  const show = await postJson(`${server.url}/api/show`, { model: 'x' });
  assert.deepEqual(show.body.capabilities, ['completion', 'embedding']);
});

test('an input longer than the context is refused after tokenizing only its tail (no seconds on the loop)', async () => {
  const input = 'Once upon a time there was a little fox. '.repeat(200_000); // 8 MB, ~2 M tokens
  for (const [path, body] of [
    ['/v1/embeddings', { model: 'x', input }],
    ['/api/embed', { model: 'x', input }],
  ] as const) {
    const cpu = process.cpuUsage();
    const response = await postJson(`${server.url}${path}`, body);
    const used = process.cpuUsage(cpu);
    assert.equal(response.status, 400, path);
    assert.match(JSON.stringify(response.body), /more than 512 tokens/);
    // Tokenizing all of it costs ~3 s of CPU; the tail, parsing and the error take a small part of that.
    assert.ok((used.user + used.system) / 1000 < 1500, `${path}: ${((used.user + used.system) / 1000).toFixed(0)} ms`);
  }
});
