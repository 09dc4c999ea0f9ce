import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type { RunningServer } from '../../src/main.ts';
import { grammarText, validGrammarText } from '../support/gbnf-arbitraries.ts';
import { startTestServer } from '../support/test-server.ts';

/**
 * Grammars and JSON schemas from clients, on the real server: every bad one is a 400 in the protocol's own
 * envelope, answered before the generation is submitted (so a stream route answers 400, not an error event
 * inside a 200), within 5 s; and the server keeps serving afterwards. The server runs in this process, so this
 * process's RSS is the server's: past 1.5 GB the test stops the process rather than let a regression eat the
 * machine (`{3,1}` used to grow it by 0.5 GB/s).
 */
const RSS_LIMIT = 1.5 * 1024 ** 3;
const DEADLINE_MS = 5000;

let peakRss = 0;
const watchdog = setInterval(() => {
  const rss = process.memoryUsage().rss;
  peakRss = Math.max(peakRss, rss);
  if (rss > RSS_LIMIT) {
    console.error(`grammar-input: RSS ${(rss / 1024 ** 2).toFixed(0)} MB passed the limit; stopping`);
    process.exit(97);
  }
}, 50);
watchdog.unref();

async function post(url: string, body: unknown): Promise<{ status: number; type: string; body: any }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(DEADLINE_MS),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: response.status, type: response.headers.get('content-type') ?? '', body: parsed };
}

const BAD_GRAMMARS: [grammar: string, says: string][] = [
  ['root ::= "a"{3,1}', 'rule root: repeat {3,1} has a minimum above its maximum'],
  ['root ::= "a"{1,0}', 'rule root: repeat {1,0} has a minimum above its maximum'],
  ['root ::= "a"{5,2}', 'rule root: repeat {5,2} has a minimum above its maximum'],
  ['root ::= [\\x00]', 'rule root: [\\x00] matches no character'],
  ['root ::= ("a"{0,999}){0,999}', 'fewer than 2000'],
  ['root ::= a root "x" | "y"\na ::= b\nb ::= ""', 'left-recursive'],
];
const BAD_SCHEMAS: [schema: unknown, says: string][] = [
  [{ type: 'foo' }, '$.type: unknown type "foo"'],
  [{ enum: [] }, '$.enum: expected a non-empty list'],
  [{ oneOf: [] }, '$.oneOf: expected a non-empty list'],
  [{ type: 'array', minItems: 3, maxItems: 1 }, '$.minItems'],
  [{ $ref: '#/$defs/nowhere' }, '$.$ref'],
];

describe('grammar and JSON-schema input (real server, real model)', () => {
  let server: RunningServer;
  let base: string;
  before(async () => {
    server = await startTestServer({ contextSize: 256, defaultMaxLength: 8 });
    base = server.url;
  });
  after(async () => {
    await server.close();
    clearInterval(watchdog);
  });

  /** A normal generation still works: the server is neither hung nor wedged. */
  const stillServes = async () => {
    const { status, body } = await post(`${base}/api/v1/generate`, { prompt: 'Once', max_length: 3 });
    assert.equal(status, 200);
    assert.equal(typeof body.results[0].text, 'string');
  };

  test('bad GBNF grammars: a 400 naming the rule on the Kobold, stream and OpenAI routes', async () => {
    for (const [grammar, says] of BAD_GRAMMARS) {
      const kobold = await post(`${base}/api/v1/generate`, { prompt: 'Once', max_length: 4, grammar });
      assert.equal(kobold.status, 400, grammar);
      assert.equal(kobold.body.detail.type, 'bad_input');
      assert.equal(kobold.body.detail.field, 'grammar');
      assert.ok(kobold.body.detail.msg.includes(says), `${kobold.body.detail.msg} lacks ${says}`);

      const stream = await post(`${base}/api/extra/generate/stream`, { prompt: 'Once', max_length: 4, grammar });
      assert.equal(stream.status, 400, `stream: ${grammar}`);
      assert.match(stream.type, /application\/json/);
      assert.ok(stream.body.detail.msg.includes(says));

      const chat = await post(`${base}/v1/chat/completions`, {
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 4,
        grammar,
      });
      assert.equal(chat.status, 400);
      assert.equal(chat.body.error.type, 'invalid_request_error');
      assert.equal(chat.body.error.param, 'grammar');
      assert.ok(chat.body.error.message.includes(says));

      const streamedChat = await post(`${base}/v1/chat/completions`, {
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 4,
        stream: true,
        grammar,
      });
      assert.equal(streamedChat.status, 400);
      assert.equal(streamedChat.body.error.param, 'grammar');
    }
    await stillServes();
  });

  test('invalid JSON schemas: a 400 naming the JSON path on OpenAI, Ollama, json_to_grammar and Kobold', async () => {
    for (const [schema, says] of BAD_SCHEMAS) {
      const chat = await post(`${base}/v1/chat/completions`, {
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 4,
        stream: true,
        response_format: { type: 'json_schema', json_schema: { name: 'x', schema } },
      });
      assert.equal(chat.status, 400);
      assert.equal(chat.body.error.param, 'response_format.json_schema.schema');
      assert.ok(chat.body.error.message.includes(says), `${chat.body.error.message} lacks ${says}`);

      const ollama = await post(`${base}/api/generate`, { model: 'x', prompt: 'Once', format: schema, stream: true });
      assert.equal(ollama.status, 400);
      assert.equal(typeof ollama.body.error, 'string');
      assert.ok(ollama.body.error.startsWith('format: '), ollama.body.error);
      assert.ok(ollama.body.error.includes(says));

      const ollamaChat = await post(`${base}/api/chat`, {
        model: 'x',
        messages: [{ role: 'user', content: 'hi' }],
        format: schema,
        stream: false,
      });
      assert.equal(ollamaChat.status, 400);
      assert.ok(ollamaChat.body.error.includes(says));

      const convert = await post(`${base}/api/extra/json_to_grammar`, { schema });
      assert.equal(convert.status, 400);
      assert.equal(convert.body.detail.field, 'schema');
      assert.ok(convert.body.detail.msg.includes(says));

      // KoboldCpp's grammar field takes a JSON schema string as well.
      const kobold = await post(`${base}/api/extra/generate/stream`, {
        prompt: 'Once',
        grammar: JSON.stringify(schema),
      });
      assert.equal(kobold.status, 400);
      assert.equal(kobold.body.detail.field, 'grammar');
      assert.ok(kobold.body.detail.msg.includes(says));
    }
    await stillServes();
  });

  test('json_to_grammar: bodies that are not a schema object are a 400, a schema converts', async () => {
    for (const body of ['123', '"s"', 'true', 'null', '[]']) {
      const response = await post(`${base}/api/extra/json_to_grammar`, body);
      assert.equal(response.status, 400, body);
      assert.equal(response.body.detail.type, 'bad_input');
      assert.match(response.body.detail.msg, /expected a JSON schema object/);
    }
    const ok = await post(`${base}/api/extra/json_to_grammar`, {
      schema: { type: 'object', properties: { name: { type: 'string' } } },
    });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.success, true);
    assert.match(ok.body.result, /^root ::= /m);
    // The bare schema works too, and {} is any JSON value, not a grammar forcing null.
    const bare = await post(`${base}/api/extra/json_to_grammar`, {});
    assert.equal(bare.status, 200);
    assert.doesNotMatch(bare.body.result, /^root ::= null-rule/m);
  });

  test('good grammars and schemas still generate', async () => {
    const letters = await post(`${base}/api/v1/generate`, {
      prompt: 'Once',
      max_length: 6,
      grammar: 'root ::= [a-z ]+',
      sampler_seed: 3,
    });
    assert.equal(letters.status, 200);
    assert.match(letters.body.results[0].text, /^[a-z ]*$/);
    const schema = await post(`${base}/api/v1/generate`, {
      prompt: 'Once',
      max_length: 6,
      grammar: '{"type": "string", "maxLength": 20}',
      sampler_seed: 3,
    });
    assert.equal(schema.status, 200);
    assert.ok(schema.body.results[0].text.startsWith('"'), schema.body.results[0].text);
  });

  test('a grammar no token can continue is a 400, not a 500 (complete with EOS banned, a token id past the vocabulary)', async () => {
    for (const body of [{ grammar: 'root ::= "a"', ban_eos_token: true }, { grammar: 'root ::= <[99999]>' }]) {
      const response = await post(`${base}/api/v1/generate`, { prompt: 'Once', max_length: 4, ...body });
      assert.equal(response.status, 400, JSON.stringify(response.body));
      assert.equal(response.body.detail.field, 'grammar');
      assert.match(response.body.detail.msg, /allows no token of this model/);
    }
    await stillServes();
  });

  test('property: generated grammars are each a 200 or a 400 within 5 s, with RSS bounded', async () => {
    const grammars = [
      ...fc.sample(grammarText, { seed: 31, numRuns: 15 }),
      ...fc.sample(validGrammarText, { seed: 32, numRuns: 15 }),
    ];
    const statuses = new Map<number, number>();
    for (const grammar of grammars) {
      const started = performance.now();
      const response = await post(`${base}/api/v1/generate`, { prompt: 'Once', max_length: 2, grammar });
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      assert.ok(
        response.status === 200 || response.status === 400,
        `${response.status} ${JSON.stringify(response.body)} for ${JSON.stringify(grammar)}`,
      );
      if (response.status === 400) assert.equal(response.body.detail.field, 'grammar');
      assert.ok(performance.now() - started < DEADLINE_MS);
    }
    assert.ok((statuses.get(200) ?? 0) > 0 && (statuses.get(400) ?? 0) > 0, JSON.stringify([...statuses]));
    assert.ok(peakRss < RSS_LIMIT);
    await stillServes();
  });
});
