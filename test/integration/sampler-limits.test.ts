import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import type { RunningServer } from '../../src/main.ts';
import { postJson, startTestServer } from '../support/test-server.ts';

/** The server runs in this process: its RSS is ours. */
const RSS_LIMIT = 1.5 * 1024 ** 3;
const TIME_LIMIT_MS = 5000;

/** Runs `request` while sampling RSS every 20 ms; fails if it took longer than 5 s or RSS passed 1.5 GB. */
async function bounded<T>(label: string, request: () => Promise<T>): Promise<T> {
  let peak = process.memoryUsage().rss;
  const watch = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  const started = performance.now();
  try {
    const result = await request();
    const ms = performance.now() - started;
    peak = Math.max(peak, process.memoryUsage().rss);
    assert.ok(ms < TIME_LIMIT_MS, `${label}: took ${Math.round(ms)} ms`);
    assert.ok(peak < RSS_LIMIT, `${label}: RSS reached ${Math.round(peak / 1024 ** 2)} MB`);
    return result;
  } finally {
    clearInterval(watch);
  }
}

describe('sampler limits on the real server: huge windows are clamped, bad ids and wrong types are 400s', () => {
  let server: RunningServer;
  let vocab: number;
  const post = (path: string, body: unknown) => postJson(`${server.url}${path}`, body);
  before(async () => {
    server = await startTestServer({ contextSize: 256, defaultMaxLength: 8 });
    vocab = server.context.engine.model.vocabularySize;
  });
  after(async () => server.close());

  test('a 10⁹-token DRY window and a 10⁹-token repetition window finish at once, in bounded memory', async () => {
    for (const extra of [
      { dry_multiplier: 0.8, dry_penalty_last_n: 1_000_000_000 },
      { rep_pen_range: 1_000_000_000, rep_pen: 1.1 },
      { rep_pen_range: 1e300, rep_pen: 1.1, top_k: 1e15, dry_multiplier: 0.8, dry_allowed_length: 1e12 },
      { rep_pen_range: -1, rep_pen: 1.1, dry_multiplier: 0.8, dry_penalty_last_n: 0 },
    ]) {
      const { status, body } = await bounded(JSON.stringify(extra), () =>
        post('/api/v1/generate', { prompt: 'Once upon a time', max_length: 6, ...extra }),
      );
      assert.equal(status, 200, JSON.stringify(body));
      assert.equal(typeof body.results[0].text, 'string');
    }
  });

  test('the same windows through OpenAI, Ollama and the WebSocket bridge are clamped too', async () => {
    const openai = await bounded('openai', () =>
      post('/v1/completions', {
        prompt: 'Once',
        max_tokens: 4,
        dry_multiplier: 0.8,
        dry_penalty_last_n: 1_000_000_000,
        rep_pen_range: 1_000_000_000,
        frequency_penalty: 0.5,
      }),
    );
    assert.equal(openai.status, 200, JSON.stringify(openai.body));
    const ollama = await bounded('ollama', () =>
      post('/api/generate', {
        prompt: 'Once',
        raw: true,
        stream: false,
        options: { num_predict: 4, repeat_last_n: 1_000_000_000, repeat_penalty: 1.2, top_k: 1_000_000_000 },
      }),
    );
    assert.equal(ollama.status, 200, JSON.stringify(ollama.body));
    const socket = new WebSocket(`${server.url.replace('http', 'ws')}/api/extra/generate/ws`);
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    try {
      const end = await bounded('websocket', async () => {
        const messages: Array<{ type: string; id?: string; message?: string }> = [];
        const done = new Promise<{ type: string; message?: string }>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no end: ${JSON.stringify(messages)}`)), TIME_LIMIT_MS);
          socket.on('message', (data) => {
            const message = JSON.parse(String(data));
            messages.push(message);
            if (message.type === 'end' || message.type === 'error') {
              clearTimeout(timer);
              resolve(message);
            }
          });
        });
        socket.send(
          JSON.stringify({
            type: 'start',
            id: 'WSWIN',
            request: { prompt: 'Once', max_length: 4, dry_multiplier: 0.8, dry_penalty_last_n: 1_000_000_000 },
          }),
        );
        return done;
      });
      assert.equal(end.type, 'end', JSON.stringify(end));
    } finally {
      socket.close();
    }
  });

  test("768 banned strings (KoboldCpp's most) are looked up at once, and what they ban is never generated", async () => {
    const letters = 'abcdefghijklmnopqrstuvwxyz';
    const many = Array.from({ length: 768 }, (_, i) => `${letters[i % 26]}${letters[Math.floor(i / 26) % 26]}q${i}`);
    const { status, body } = await bounded('768 banned strings', () =>
      post('/api/v1/generate', { prompt: 'Once', max_length: 4, banned_tokens: many }),
    );
    assert.equal(status, 200, JSON.stringify(body));
    const noE = await post('/api/v1/generate', {
      prompt: 'Once upon a time',
      max_length: 24,
      ban_eos_token: true,
      sampler_seed: 5,
      banned_tokens: ['e'],
    });
    assert.equal(noE.status, 200);
    assert.ok(noE.body.results[0].text.length > 0);
    assert.doesNotMatch(noE.body.results[0].text, /e/i);
  });

  test('logit_bias id 4294967464 (which wrapped to 168) and id == vocabulary size are 400s naming the id and range', async () => {
    const range = `0..${vocab - 1}`;
    for (const id of ['4294967464', String(vocab)]) {
      for (const [path, body] of [
        ['/api/v1/generate', { prompt: 'x', max_length: 2, logit_bias: { [id]: 5 } }],
        ['/api/extra/generate/stream', { prompt: 'x', max_length: 2, logit_bias: { [id]: 5 } }],
        ['/v1/completions', { prompt: 'x', max_tokens: 2, logit_bias: { [id]: 5 } }],
        [
          '/v1/chat/completions',
          { messages: [{ role: 'user', content: 'x' }], max_tokens: 2, logit_bias: { [id]: 5 } },
        ],
        ['/api/generate', { prompt: 'x', stream: false, options: { num_predict: 2, logit_bias: { [id]: 5 } } }],
      ] as const) {
        const { status, body: response } = await post(path, body);
        assert.equal(status, 400, `${path} ${id}: ${JSON.stringify(response)}`);
        const text = JSON.stringify(response);
        assert.match(text, new RegExp(`logit_bias: token id ${id} is outside the vocabulary \\(${range}\\)`), text);
      }
    }
    const ok = await post('/api/v1/generate', { prompt: 'x', max_length: 2, logit_bias: { [vocab - 1]: 5 } });
    assert.equal(ok.status, 200);
    const bans = await post('/api/v1/generate', { prompt: 'x', max_length: 2, custom_token_bans: `1,${vocab}` });
    assert.equal(bans.status, 400);
    assert.match(bans.body.detail.msg, new RegExp(`custom_token_bans: token id ${vocab} is outside`));
  });

  test('a numeric prompt is a 400 naming `prompt` in every protocol', async () => {
    const kobold = await post('/api/v1/generate', { prompt: 123 });
    assert.equal(kobold.status, 400);
    assert.equal(kobold.body.detail.msg, 'prompt: expected a string');
    const tokencount = await post('/api/extra/tokencount', { prompt: 123 });
    assert.equal(tokencount.status, 400);
    assert.equal(tokencount.body.value, -1);
    assert.match(tokencount.body.detail.msg, /^prompt: expected a string/);
    const openai = await post('/v1/completions', { prompt: 123, max_tokens: 2 });
    assert.equal(openai.status, 400);
    assert.match(openai.body.error.message, /^prompt: expected a string/);
    const anthropic = await post('/v1/messages', {
      model: 'x',
      max_tokens: 2,
      messages: [{ role: 'user', content: 123 }],
    });
    assert.equal(anthropic.status, 400);
    assert.match(anthropic.body.error.message, /^messages\[0\]\.content: expected a string/);
    const anthropicList = await post('/v1/messages', { model: 'x', max_tokens: 2, messages: 123 });
    assert.equal(anthropicList.status, 400);
    assert.match(anthropicList.body.error.message, /^messages: expected a list/);
    const ollama = await post('/api/generate', { prompt: 123, stream: false });
    assert.equal(ollama.status, 400);
    assert.match(JSON.stringify(ollama.body), /prompt: expected a string/);
    const socket = new WebSocket(`${server.url.replace('http', 'ws')}/api/extra/generate/ws`);
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    try {
      const error = new Promise<{ status: number; message: string }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no error message')), TIME_LIMIT_MS);
        socket.on('message', (data) => {
          clearTimeout(timer);
          resolve(JSON.parse(String(data)));
        });
      });
      socket.send(JSON.stringify({ type: 'start', id: 'WSNUM', request: { prompt: 123 } }));
      const { status, message } = await error;
      assert.equal(status, 400);
      assert.equal(message, 'request.prompt: expected a string');
    } finally {
      socket.close();
    }
  });

  test('other wrong types are 400s naming the field, in every protocol', async () => {
    for (const [path, body, message] of [
      ['/api/v1/generate', { prompt: 'x', trim_stop: 'true' }, 'trim_stop: expected a boolean'],
      ['/api/v1/generate', { prompt: 'x', temperature: 'hot' }, 'temperature: expected a number'],
      ['/api/v1/generate', { prompt: 'x', rep_pen_range: -7 }, 'rep_pen_range: -7 is not a window'],
      ['/api/v1/generate', { prompt: 'x', stop_sequence: Array(257).fill('x') }, 'stop_sequence: at most 256'],
      [
        '/v1/chat/completions',
        { messages: [{ role: 'user', content: 'x' }], temperature: '1' },
        'temperature: expected',
      ],
      [
        '/v1/chat/completions',
        { messages: [{ role: 'user', content: 'x' }], top_logprobs: 21 },
        'top_logprobs: must be <= 20',
      ],
      ['/v1/completions', { prompt: 'x', stop: ['y'.repeat(501)] }, 'stop[0]: at most 500 characters'],
      ['/v1/embeddings', { input: 5 }, 'input: expected a string or a list'],
      ['/v1/embeddings', { input: [5] }, 'input[0]: expected a string'],
      [
        '/v1/messages',
        { model: 'x', max_tokens: '2', messages: [{ role: 'user', content: 'x' }] },
        'max_tokens: expected an integer',
      ],
      ['/api/generate', { prompt: 'x', options: { num_predict: '2' } }, 'options.num_predict: expected an integer'],
      ['/api/generate', { prompt: 'x', options: { repeat_last_n: -3 } }, 'repeat_last_n: -3 is not a window'],
      ['/api/chat', { messages: [{ role: 'user', content: 5 }] }, 'messages[0].content: expected a string'],
      ['/api/extra/detokenize', { ids: [1.5] }, 'ids[0]: expected an integer'],
      ['/api/extra/detokenize', { ids: '1,2' }, 'ids: expected a list'],
    ] as const) {
      const { status, body: response } = await post(path, body);
      assert.equal(status, 400, `${path} ${JSON.stringify(body).slice(0, 80)}: ${JSON.stringify(response)}`);
      assert.ok(JSON.stringify(response).includes(message), `${path}: ${JSON.stringify(response)}`);
    }
  });

  test('detokenize: ids are 0..vocabulary-1, at most 262144 of them', async () => {
    const outside = await post('/api/extra/detokenize', { ids: [1, vocab] });
    assert.equal(outside.status, 400);
    assert.match(
      outside.body.detail.msg,
      new RegExp(`token id ${vocab} is outside the vocabulary \\(0\\.\\.${vocab - 1}\\)`),
    );
    const many = await post('/api/extra/detokenize', { ids: Array(262_145).fill(1) });
    assert.equal(many.status, 400);
    assert.match(many.body.detail.msg, /ids: at most 262144 items/);
    const ok = await post('/api/extra/detokenize', { ids: [1, 2] });
    assert.equal(ok.status, 200);
    // A body bigger than the most ids the route takes is refused before JSON.parse spends the event loop on it.
    const huge = await post('/api/extra/detokenize', { ids: Array(600_000).fill(12345) });
    assert.equal(huge.status, 413);
    assert.match(huge.body.detail.msg, /Payload is too big\. Max payload size is 2MB\./);
  });

  test('the coercions Kobold clients need still work', async () => {
    const numbers = await post('/api/v1/generate', {
      prompt: 'Once upon a time',
      max_length: '4',
      temperature: '0.5',
      top_k: '40',
      sampler_seed: null,
      ban_eos_token: true,
    });
    assert.equal(numbers.status, 200, JSON.stringify(numbers.body));
    assert.equal(numbers.body.results[0].completion_tokens, 4);
    const first = (await post('/api/v1/generate', { prompt: 'Once', max_length: 8, sampler_seed: 3, temperature: 0 }))
      .body.results[0].text as string;
    const stopAt = first.trim().slice(0, 2);
    if (stopAt) {
      const stopped = await post('/api/v1/generate', {
        prompt: 'Once',
        max_length: 8,
        sampler_seed: 3,
        temperature: 0,
        stop_sequence: stopAt,
      });
      assert.equal(stopped.status, 200);
      assert.ok(!(stopped.body.results[0].text as string).includes(stopAt), 'a single stop string stops');
    }
    const breakers = await post('/api/v1/generate', {
      prompt: 'Once',
      max_length: 3,
      dry_multiplier: 0.8,
      dry_sequence_breakers: '["\\n", ":", "\\"", "*"]',
    });
    assert.equal(breakers.status, 200, JSON.stringify(breakers.body));
  });
});
