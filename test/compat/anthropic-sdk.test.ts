import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import type { RunningServer } from '../../src/main.ts';
import { startTestServer } from '../support/test-server.ts';

/** The official `@anthropic-ai/sdk` against the real server (with a password, so auth is exercised too). */
let server: RunningServer;
const PASSWORD = 'sesame';
const messages = [{ role: 'user' as const, content: 'Hi' }];
// The SDK's types no longer list the samplers, but it sends what it is given and the API still defines them.
const greedy: object = { temperature: 0 };
const sampled: object = { temperature: 0.8, top_k: 40, top_p: 0.9 };

before(async () => {
  server = await startTestServer({ password: PASSWORD });
});
after(() => server.close());

const client = (options: { apiKey?: string | null; authToken?: string | null } = { apiKey: PASSWORD }) =>
  new Anthropic({
    baseURL: server.url,
    maxRetries: 0,
    apiKey: options.apiKey ?? null,
    authToken: options.authToken ?? null,
  });

test('messages.create: a message with one text block, real usage, unique ids', async () => {
  const a = await client().messages.create({ model: 'any', max_tokens: 6, messages });
  const b = await client().messages.create({ model: 'any', max_tokens: 6, messages });
  assert.equal(a.type, 'message');
  assert.equal(a.role, 'assistant');
  assert.match(a.id, /^msg_/);
  assert.notEqual(a.id, b.id);
  assert.equal(a.content.length, 1);
  assert.equal(a.content[0]?.type, 'text');
  assert.ok(['end_turn', 'max_tokens'].includes(a.stop_reason ?? ''));
  const count = await client().messages.countTokens({ model: 'any', messages });
  assert.equal(a.usage.input_tokens, count.input_tokens);
  assert.ok(a.usage.output_tokens >= 1 && a.usage.output_tokens <= 6);
});

test('stop_sequences: the matching sequence is reported as stop_sequence and trimmed from the text', async () => {
  // Greedy decoding is deterministic: take the free text, then stop on a piece of it.
  const free = await client().messages.create({ model: 'any', max_tokens: 12, messages, ...greedy });
  const text = free.content[0]?.type === 'text' ? free.content[0].text : '';
  assert.ok(text.length >= 4, `greedy text long enough: ${JSON.stringify(text)}`);
  const stop = text.slice(2, 4);
  const expected = text.slice(0, text.indexOf(stop));
  const stopped = await client().messages.create({
    model: 'any',
    max_tokens: 12,
    messages,
    ...greedy,
    stop_sequences: [stop],
  });
  assert.equal(stopped.stop_reason, 'stop_sequence');
  assert.equal(stopped.stop_sequence, stop);
  assert.deepEqual(stopped.content, [{ type: 'text', text: expected }]);
});

test('.stream() helper: events in order, accumulated final message equals the streamed text', async () => {
  const stream = client().messages.stream({ model: 'any', max_tokens: 12, messages, ...sampled });
  const types: string[] = [];
  let streamed = '';
  stream.on('streamEvent', (event) => types.push(event.type));
  stream.on('text', (delta) => {
    streamed += delta;
  });
  const final = await stream.finalMessage();
  assert.equal(types[0], 'message_start');
  assert.equal(types[1], 'content_block_start');
  assert.equal(types.at(-3), 'content_block_stop');
  assert.equal(types.at(-2), 'message_delta');
  assert.equal(types.at(-1), 'message_stop');
  assert.ok(types.slice(2, -3).every((t) => t === 'content_block_delta'));
  assert.equal(final.content[0]?.type === 'text' ? final.content[0].text : undefined, streamed);
  assert.ok(final.stop_reason === 'end_turn' || final.stop_reason === 'max_tokens');
  const count = await client().messages.countTokens({ model: 'any', messages });
  assert.equal(final.usage.input_tokens, count.input_tokens);
  assert.ok(final.usage.output_tokens >= 1);
});

test('auth: x-api-key and Bearer both work; a wrong key is an AuthenticationError in Anthropic’s envelope', async () => {
  const bearer = await client({ authToken: PASSWORD }).messages.create({
    model: 'any',
    max_tokens: 2,
    messages,
    system: 'Be brief.',
  });
  assert.equal(bearer.type, 'message');
  await assert.rejects(
    client({ apiKey: 'wrong' }).messages.create({ model: 'any', max_tokens: 2, messages }),
    (error: unknown) => {
      assert.ok(error instanceof Anthropic.AuthenticationError);
      assert.equal(
        ((error as InstanceType<typeof Anthropic.AuthenticationError>).error as { type?: string }).type,
        'error',
      );
      return true;
    },
  );
});

test('bad input is an invalid_request_error naming the field', async () => {
  await assert.rejects(
    client().messages.create({
      model: 'any',
      max_tokens: 2,
      messages: [
        {
          role: 'user',
          content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AA==' } }],
        },
      ],
    }),
    (error: unknown) => {
      assert.ok(error instanceof Anthropic.BadRequestError);
      const body = (error as InstanceType<typeof Anthropic.BadRequestError>).error as {
        error: { type: string; message: string };
      };
      assert.equal(body.error.type, 'invalid_request_error');
      assert.match(body.error.message, /messages\[0\]\.content\[0\]/);
      return true;
    },
  );
});
