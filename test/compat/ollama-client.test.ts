import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Ollama } from 'ollama';
import type { RunningServer } from '../../src/main.ts';
import { within } from '../support/deadline.ts';
import { banEndTokens, postJson, startTestServer } from '../support/test-server.ts';

/** The `ollama` npm client against the real server. */
let server: RunningServer;
let ollama: Ollama;
before(async () => {
  server = await startTestServer();
  ollama = new Ollama({ host: server.url });
});
after(() => server.close());

test('generate streaming: parts as tokens arrive, a final part with done_reason, counters and context', async () => {
  const whole = await ollama.generate({
    model: 'any',
    prompt: 'Once upon a time',
    options: { num_predict: 10, seed: 9 },
  });
  const parts = [];
  for await (const part of within(
    await ollama.generate({
      model: 'any',
      prompt: 'Once upon a time',
      stream: true,
      options: { num_predict: 10, seed: 9 },
    }),
    120_000,
    'the generate stream to end',
  ))
    parts.push(part);
  const final = parts.at(-1);
  assert.ok(final?.done);
  assert.ok(parts.slice(0, -1).every((p) => !p.done && (p.response ?? '').length > 0));
  assert.equal(final?.response, '');
  assert.equal(parts.map((p) => p.response).join(''), whole.response, 'same seed: streamed text = whole text');
  assert.ok(final?.done_reason === 'stop' || final?.done_reason === 'length');
  assert.equal(final?.eval_count, whole.eval_count);
  assert.ok((final?.eval_count ?? 0) >= 1 && (final?.eval_count ?? 0) <= 10);
  assert.ok((final?.prompt_eval_count ?? 0) > 0);
  assert.ok((final?.total_duration ?? 0) >= (final?.eval_duration ?? 0));
  // context = the prompt's tokens without BOS, then the returned text's tokens; sending it back continues from there.
  const counted = await postJson(`${server.url}/api/extra/tokencount`, { prompt: whole.response, special: false });
  assert.equal(final?.context?.length, (final?.prompt_eval_count ?? 0) - 1 + counted.body.value);
  assert.ok(!Number.isNaN(Date.parse(final?.created_at as unknown as string)));
});

test('generate with format (JSON schema) is enforced; raw prompts skip the template', async () => {
  const schema = {
    type: 'object',
    properties: { answer: { enum: ['no'] } },
    required: ['answer'],
    additionalProperties: false,
  };
  const result = await ollama.generate({
    model: 'any',
    prompt: 'Answer',
    format: schema,
    options: { num_predict: 40 },
  });
  assert.deepEqual(JSON.parse(result.response ?? ''), { answer: 'no' });
  const raw = await ollama.generate({
    model: 'any',
    prompt: 'Once upon a time',
    raw: true,
    options: { num_predict: 1 },
  });
  const counted = await postJson(`${server.url}/api/extra/tokencount`, { prompt: 'Once upon a time' });
  assert.equal(raw.prompt_eval_count, counted.body.value);
});

test('chat streaming: assistant message parts, then done with counters', async () => {
  const parts = [];
  const messages = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Hi' },
  ];
  for await (const part of within(
    await ollama.chat({
      model: 'any',
      messages,
      stream: true,
      options: { num_predict: 8, temperature: 0 },
    }),
    120_000,
    'the chat stream to end',
  ))
    parts.push(part);
  const whole = await ollama.chat({ model: 'any', messages, options: { num_predict: 8, temperature: 0 } });
  assert.ok(parts.every((p) => p.message.role === 'assistant'));
  assert.equal(parts.map((p) => p.message.content).join(''), whole.message.content);
  const final = parts.at(-1);
  assert.ok(final?.done);
  assert.equal(final?.message.content, '');
  assert.equal(final?.eval_count, whole.eval_count);
  assert.equal(final?.prompt_eval_count, whole.prompt_eval_count);
});

test('breaking out of a stream (client abort) frees the slot', async () => {
  const { scheduler } = server.context;
  // logit_bias (a Kobold/OpenAI sampler name, honoured in options too) bans the end tokens so the generation
  // cannot end by itself.
  const options = { num_predict: 400, logit_bias: banEndTokens(server) } as Record<string, unknown>;
  const stream = await ollama.generate({ model: 'any', prompt: 'Once', stream: true, options });
  let n = 0;
  for await (const part of within(stream, 120_000, 'the stream to end')) {
    if (part.response) n++;
    if (n >= 2) {
      stream.abort();
      break;
    }
  }
  const generation = scheduler.last;
  const deadline = Date.now() + 3000;
  while (scheduler.busySlots > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(scheduler.busySlots, 0);
  assert.equal(generation?.stopReason, 'abort');
});

test('list, ps, show and version describe the loaded model', async () => {
  const name = `koboldcpp/${server.context.engine.model.name}:latest`;
  const list = await ollama.list();
  assert.equal(list.models.length, 1);
  assert.equal(list.models[0]?.name, name);
  assert.equal(list.models[0]?.details.format, 'gguf');
  assert.equal(list.models[0]?.size, server.context.engine.model.sizeBytes);
  assert.match(list.models[0]?.digest ?? '', /^[0-9a-f]{64}$/);
  const ps = await ollama.ps();
  assert.equal(ps.models[0]?.name, name);
  const show = await ollama.show({ model: name });
  assert.deepEqual(show.capabilities, ['completion']);
  assert.equal(show.details.family, 'llama');
  const version = await ollama.version();
  assert.equal(version.version, '0.7.0');
});

test('errors reject with the server’s message', async () => {
  await assert.rejects(
    ollama.chat({ model: 'any', messages: [{ role: 'tool', content: 'x' }] }),
    /messages\[0\]\.role/,
  );
  await assert.rejects(ollama.generate({ model: 'any', prompt: 'x', format: 'yaml' as 'json' }), /format/);
});
