import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { DEFAULT_SAMPLING } from '../../src/core/sampling-params.ts';
import type { RunningServer } from '../../src/main.ts';
import { deadlineSignal, within } from '../support/deadline.ts';
import { banEndTokens, postJson, startTestServer } from '../support/test-server.ts';

/** The official `openai` npm SDK against the real server on the tiny random-weight model. */
let server: RunningServer;
let client: OpenAI;
const YES_SCHEMA = {
  type: 'json_schema',
  json_schema: {
    name: 'answer',
    strict: true,
    schema: {
      type: 'object',
      properties: { answer: { enum: ['yes'] } },
      required: ['answer'],
      additionalProperties: false,
    },
  },
} as const;

before(async () => {
  // Short heartbeats, so the queued-stream test below sees `: ping` comments in the stream.
  server = await startTestServer({ heartbeatMs: 40 });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
after(() => server.close());

const messages = [{ role: 'user' as const, content: 'Hi' }];

test('chat: a chat.completion with a unique id, real usage, and the ChatML fallback prompt counted exactly', async () => {
  const a = await client.chat.completions.create({ model: 'any', messages, max_tokens: 6, seed: 11 });
  const b = await client.chat.completions.create({ model: 'any', messages, max_tokens: 6, seed: 11 });
  assert.equal(a.object, 'chat.completion');
  assert.match(a.id, /^chatcmpl-/);
  assert.notEqual(a.id, b.id);
  assert.ok(Math.abs(a.created - Date.now() / 1000) < 60);
  assert.match(a.system_fingerprint ?? '', /^fp_/);
  const choice = a.choices[0];
  assert.ok(choice);
  assert.equal(choice.message.role, 'assistant');
  assert.equal(choice.message.content, b.choices[0]?.message.content, 'same seed, same text');
  assert.ok(choice.finish_reason === 'stop' || choice.finish_reason === 'length');
  // The test model has no template of its own and knows ChatML's markers, so the fallback is ChatML.
  const rendered = await postJson(`${server.url}/api/extra/tokencount`, {
    prompt: '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
  });
  assert.equal(a.usage?.prompt_tokens, rendered.body.value);
  assert.ok((a.usage?.completion_tokens ?? 0) >= 1 && (a.usage?.completion_tokens ?? 0) <= 6);
  if (choice.finish_reason === 'length') assert.equal(a.usage?.completion_tokens, 6);
  assert.equal(a.usage?.total_tokens, (a.usage?.prompt_tokens ?? 0) + (a.usage?.completion_tokens ?? 0));
  assert.ok(!choice.message.content?.includes('<|im_end|>'));
});

test('chat: response_format json_schema is enforced by a grammar', async () => {
  const result = await client.chat.completions.create({
    model: 'any',
    messages,
    max_tokens: 40,
    response_format: YES_SCHEMA,
  });
  assert.deepEqual(JSON.parse(result.choices[0]?.message.content ?? ''), { answer: 'yes' });
  assert.equal(result.choices[0]?.finish_reason, 'stop');
});

test('chat streaming: role first, content deltas, finish_reason, then a usage chunk; text equals the non-streamed text', async () => {
  const whole = await client.chat.completions.create({ model: 'any', messages, max_tokens: 12, seed: 5 });
  const stream = await client.chat.completions.create({
    model: 'any',
    messages,
    max_tokens: 12,
    seed: 5,
    stream: true,
    stream_options: { include_usage: true },
  });
  const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
  for await (const chunk of within(stream, 120_000, 'the stream to end')) chunks.push(chunk);
  assert.equal(chunks[0]?.choices[0]?.delta.role, 'assistant');
  assert.ok(chunks.every((c) => c.id === chunks[0]?.id && c.object === 'chat.completion.chunk'));
  const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
  assert.equal(text, whole.choices[0]?.message.content);
  const finished = chunks.filter((c) => c.choices[0]?.finish_reason);
  assert.equal(finished.length, 1);
  assert.equal(finished[0]?.choices[0]?.finish_reason, whole.choices[0]?.finish_reason);
  const last = chunks[chunks.length - 1];
  assert.deepEqual(last?.choices, []);
  assert.deepEqual(
    { prompt: last?.usage?.prompt_tokens, completion: last?.usage?.completion_tokens },
    { prompt: whole.usage?.prompt_tokens, completion: whole.usage?.completion_tokens },
  );
});

test('completions: raw prompt, stop string trimmed, finish_reason stop; streaming gives the same text', async () => {
  // A Kobold-style grammar field (honoured on OpenAI routes too) forces the text, so the stop string is certain.
  const extra = { grammar: 'root ::= "yes no yes"' } as Record<string, unknown>;
  const result = await client.completions.create({
    model: 'any',
    prompt: 'Once upon a time',
    max_tokens: 10,
    stop: ' no',
    ...extra,
  });
  assert.equal(result.object, 'text_completion');
  assert.match(result.id, /^cmpl-/);
  assert.equal(result.choices[0]?.text, 'yes');
  assert.equal(result.choices[0]?.finish_reason, 'stop');
  const rendered = await postJson(`${server.url}/api/extra/tokencount`, { prompt: 'Once upon a time' });
  assert.equal(result.usage?.prompt_tokens, rendered.body.value);

  const stream = await client.completions.create({
    model: 'any',
    prompt: 'Once upon a time',
    max_tokens: 10,
    stop: [' no'],
    stream: true,
    ...extra,
  });
  let text = '';
  let finish: string | null = null;
  for await (const chunk of within(stream, 120_000, 'the stream to end')) {
    text += chunk.choices[0]?.text ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(text, 'yes');
  assert.equal(finish, 'stop');
});

test('completions: logprobs returns one entry per generated token', async () => {
  const result = await client.completions.create({ model: 'any', prompt: 'Once', max_tokens: 4, logprobs: 2, seed: 3 });
  const logprobs = result.choices[0]?.logprobs;
  // An end-of-generation token counts in usage but has no text, so it has no logprobs entry.
  const usage = result.usage?.completion_tokens ?? 0;
  assert.ok(
    logprobs?.tokens?.length === usage ||
      (result.choices[0]?.finish_reason === 'stop' && logprobs?.tokens?.length === usage - 1),
  );
  assert.ok(logprobs?.top_logprobs?.every((top) => Object.keys(top).length <= 2));
  assert.ok(logprobs?.token_logprobs?.every((lp) => typeof lp === 'number' && lp <= 0));
});

test('abort mid-stream (breaking out of the SDK iterator) frees the slot at once', async () => {
  const { scheduler } = server.context;
  const stream = await client.chat.completions.create({
    model: 'any',
    messages,
    max_tokens: 400,
    stream: true,
    logit_bias: banEndTokens(server),
  });
  let seen = 0;
  for await (const chunk of within(stream, 120_000, 'the stream to end')) {
    if (chunk.choices[0]?.delta.content) seen++;
    if (seen >= 2) break;
  }
  const generation = scheduler.last;
  assert.ok(generation);
  const deadline = Date.now() + 3000;
  while (scheduler.busySlots > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(scheduler.busySlots, 0, 'the slot is free again');
  assert.equal(generation.stopReason, 'abort');
  assert.ok(generation.log.text.length > 0);
});

test('models.list and models.retrieve name the loaded model by the id /api/v1/model says', async () => {
  const list = await client.models.list();
  const name = `koboldcpp/${server.context.engine.model.name}`;
  assert.deepEqual(
    list.data.map((m) => m.id),
    [name],
  );
  assert.equal((await (await fetch(`${server.url}/api/v1/model`)).json()).result, name);
  assert.equal((await client.models.retrieve(name)).id, name);
  await assert.rejects(client.models.retrieve('nope'), (error: unknown) => error instanceof OpenAI.NotFoundError);
});

test('errors arrive as typed SDK errors with the field named', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'any', messages, n: 2 }), (error: unknown) => {
    assert.ok(error instanceof OpenAI.BadRequestError);
    assert.equal((error as InstanceType<typeof OpenAI.BadRequestError>).param, 'n');
    return true;
  });
  await assert.rejects(
    client.embeddings.create({ model: 'any', input: 'x' }),
    (error: unknown) => error instanceof OpenAI.BadRequestError,
  );
});

test('a queued stream gets queue and heartbeat comments, which the SDK skips, then its chunks', async () => {
  const { scheduler } = server.context;
  // Two long generations fill both slots, so the next requests wait in the queue.
  const blockers = await Promise.all(
    ['block-a', 'block-b'].map((key) =>
      scheduler.submit({
        prompt: 'Once',
        memory: '',
        maxTokens: 400,
        parseSpecialTokens: true,
        stopStrings: [],
        trimStop: true,
        banEos: true,
        bypassEos: false,
        renderSpecial: false,
        sampling: { ...DEFAULT_SAMPLING, seed: 1 },
        logprobs: 0,
        key,
        abortOnDisconnect: false,
      }),
    ),
  );
  const raw = fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages, max_tokens: 3, stream: true }),
    signal: deadlineSignal(60_000, 'the queued raw stream to end'),
  });
  const stream = await client.chat.completions.create({ model: 'any', messages, max_tokens: 3, stream: true });
  await new Promise((resolve) => setTimeout(resolve, 150));
  for (const blocker of blockers) blocker.abort('client');
  const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
  for await (const chunk of within(stream, 120_000, 'the stream to end')) chunks.push(chunk);
  assert.equal(chunks[0]?.choices[0]?.delta.role, 'assistant');
  assert.ok(chunks.some((c) => c.choices[0]?.finish_reason));
  const body = await (await raw).text();
  assert.match(body, /^: queued \d+\n\n/, 'the queue position comes first');
  assert.match(body, /\n\n: ping queued \d+\n\n|^: ping queued/, 'heartbeats while queued');
  assert.ok(body.endsWith('data: [DONE]\n\n'));
});
