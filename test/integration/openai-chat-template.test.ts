import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { writeRandomLlamaModel } from '../../src/gguf/random-llama-model.ts';
import type { RunningServer } from '../../src/main.ts';
import { TEST_TMP, testModelPath } from '../support/test-model.ts';
import { postJson, startTestServer } from '../support/test-server.ts';

/**
 * A model whose GGUF carries its own chat template (a made-up one, so it cannot be mistaken for the ChatML
 * fallback): chat routes must render with it, through node-llama-cpp's Jinja support.
 */
const TEMPLATE =
  "{{ bos_token }}{% for m in messages %}[{{ m['role'] | upper }}] {{ m['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}[ASSISTANT] {% endif %}";

function templatedModelPath(): string {
  testModelPath(); // makes sure the folder exists
  const path = join(TEST_TMP, 'tiny-F16-templated-v1.gguf');
  if (existsSync(path)) return path;
  writeRandomLlamaModel(path, {
    type: 'F16',
    seed: 77,
    extraMetadata: [['tokenizer.chat_template', { type: 'string', value: TEMPLATE }]],
  });
  return path;
}

let server: RunningServer;
before(async () => {
  server = await startTestServer({ modelPath: templatedModelPath() });
});
after(() => server.close());

const count = async (prompt: string) =>
  (await postJson(`${server.url}/api/extra/tokencount`, { prompt })).body.value as number;

test('chat prompts are rendered with the GGUF’s own template, not the fallback', async () => {
  const messages = [
    { role: 'system', content: 'Be kind.' },
    { role: 'user', content: 'Hi' },
  ];
  const expected = await count('[SYSTEM] Be kind.<|im_end|>\n[USER] Hi<|im_end|>\n[ASSISTANT] ');
  const chatml = await count(
    '<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
  );
  assert.notEqual(expected, chatml);
  const openai = await postJson(`${server.url}/v1/chat/completions`, { messages, max_tokens: 2 });
  assert.equal(openai.status, 200);
  assert.equal(openai.body.usage.prompt_tokens, expected);
  const anthropic = await postJson(`${server.url}/v1/messages/count_tokens`, {
    model: 'x',
    system: 'Be kind.',
    messages: [{ role: 'user', content: 'Hi' }],
  });
  assert.equal(anthropic.body.input_tokens, expected, 'one BOS: the template’s bos_token is not doubled');
  const ollama = await postJson(`${server.url}/api/chat`, { messages, stream: false, options: { num_predict: 2 } });
  assert.equal(ollama.body.prompt_eval_count, expected);
});

test('the template’s end-of-turn marker ends the reply and never shows in the text', async () => {
  // Forced text: a grammar that writes "yes", then the end-of-turn marker, then more; the marker stops it.
  const result = await postJson(`${server.url}/v1/chat/completions`, {
    messages: [{ role: 'user', content: 'Hi' }],
    max_tokens: 20,
    grammar: 'root ::= "yes" "<|im_end|>" " no no"',
  });
  assert.equal(result.status, 200);
  assert.equal(result.body.choices[0].message.content, 'yes');
  assert.equal(result.body.choices[0].finish_reason, 'stop');
});

test('/api/show returns the template', async () => {
  const show = await postJson(`${server.url}/api/show`, { model: 'x' });
  assert.equal(show.body.template, TEMPLATE);
});
