import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { KindlingProcess } from '../support/server-process.ts';
import { slowTestModelPath } from '../support/test-model.ts';

/** The real CLI (`kindling serve`), as users start it, on the slow test model, its memory watched. */
const serve = (args: string[]) =>
  KindlingProcess.start({ modelPath: slowTestModelPath(), args: ['--heartbeat', '1', ...args] });

/** A response read to its end, with when the end came; never waits past the test's own deadline. */
async function collect(response: Promise<Response>, onText?: (text: string) => void) {
  let res: Response;
  try {
    res = await response;
  } catch (error) {
    return { status: 0, headers: new Headers(), text: '', failed: String(error), endedAt: Date.now() };
  }
  let text = '';
  let failed: string | undefined;
  const reader = res.body?.getReader();
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const chunk = await reader?.read();
      if (!chunk || chunk.done) break;
      text += decoder.decode(chunk.value, { stream: true });
      onText?.(text);
    }
  } catch (error) {
    failed = error instanceof Error ? error.message : String(error);
  }
  return { status: res.status, headers: res.headers, text, failed, endedAt: Date.now() };
}

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Bans both end tokens (EOS and `<|im_end|>`) so that a generation runs until it is cut. */
async function endTokenBias(url: string): Promise<Record<string, number>> {
  const response = await post(`${url}/api/extra/tokenize`, { prompt: '<|im_end|>', special: false });
  const imEnd = ((await response.json()) as { ids: number[] }).ids;
  const special = await post(`${url}/api/extra/tokenize`, { prompt: '<|im_end|>', special: true });
  const ids = ((await special.json()) as { ids: number[] }).ids;
  const bias: Record<string, number> = { '2': -100 };
  if (ids.length > 0 && ids.length < imEnd.length) bias[String(ids.at(-1))] = -100;
  return bias;
}

test('SIGTERM: queued work gets 503 / an error event at once, running work is cut after the grace with the protocol’s error form, exit 0', async (t) => {
  const server = await serve(['--parallel', '2', '--queue', '8', '--contextsize', '8192', '--shutdown-grace', '1']);
  t.after(() => server.child.kill('SIGKILL'));
  const { url } = server;
  const bias = await endTokenBias(url);
  const long = { max_length: 8000, ban_eos_token: true, logit_bias: bias };

  // Two running generations: a Kobold sync request and an OpenAI stream.
  const koboldSync = collect(
    post(`${url}/api/v1/generate`, { prompt: 'Once upon a time', genkey: 'KCPP5001', ...long }),
  );
  await until('the Kobold request to run', async () => {
    const check = await post(`${url}/api/extra/generate/check`, { genkey: 'KCPP5001' });
    return ((await check.json()) as { results: Array<{ status: string }> }).results[0]?.status === 'running';
  });
  let openaiStreamStarted = false;
  const openaiStream = collect(
    // The legacy completions route: no chat template, so no end-of-turn stop string can end it early.
    post(`${url}/v1/completions`, { prompt: 'Once upon a time', max_tokens: 8000, logit_bias: bias, stream: true }),
    (text) => {
      if (/"text":"[^"]+"/.test(text)) openaiStreamStarted = true;
    },
  );
  await until('the OpenAI stream’s first token', () => openaiStreamStarted);

  // Queued behind them: an Anthropic stream (its 200 head is out), an Ollama stream, an OpenAI sync request.
  let anthropicQueued = false;
  const anthropicStream = collect(
    post(`${url}/v1/messages`, {
      model: 'x',
      max_tokens: 50,
      stream: true,
      messages: [{ role: 'user', content: 'Hi' }],
    }),
    (text) => {
      if (text.includes(': queued')) anthropicQueued = true;
    },
  );
  await until('the Anthropic stream to be queued', () => anthropicQueued);
  const ollamaStream = collect(post(`${url}/api/generate`, { model: 'x', prompt: 'Hi', options: { num_predict: 5 } }));
  const openaiSync = collect(post(`${url}/v1/completions`, { prompt: 'Once', max_tokens: 5 }));
  const koboldStream = collect(post(`${url}/api/extra/generate/stream`, { prompt: 'Once', max_length: 5 }));
  await until('four requests to be queued', async () => {
    const perf = (await (await fetch(`${url}/api/extra/perf`)).json()) as { queue?: number };
    if (perf.queue !== undefined) return perf.queue >= 4;
    await sleep(500);
    return true;
  });

  // Broken clients: a request whose body never finishes, and a connection that sent half a request line.
  const port = Number(new URL(url).port);
  const halfBody = net.connect(port, '127.0.0.1');
  halfBody.on('error', () => {});
  halfBody.write('POST /api/v1/generate HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{"prompt":');
  const halfLine = net.connect(port, '127.0.0.1');
  halfLine.on('error', () => {});
  halfLine.write('POST /api/v1/gen');
  await sleep(100);

  const sigtermAt = Date.now();
  server.child.kill('SIGTERM');
  await sleep(50);
  const refusing = Promise.all([
    collect(post(`${url}/api/v1/generate`, { prompt: 'x', max_length: 2 })),
    collect(post(`${url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'x' }] })),
  ]);

  // Queued requests are answered at once, long before the grace ends.
  const anthropic = await anthropicStream;
  const ollama = await ollamaStream;
  const openaiQueued = await openaiSync;
  const koboldQueued = await koboldStream;
  for (const [name, result] of [
    ['kobold stream', koboldQueued],
    ['anthropic', anthropic],
    ['ollama', ollama],
    ['openai sync', openaiQueued],
  ] as const) {
    assert.ok(result.endedAt - sigtermAt < 900, `${name} (queued) answered at once: ${result.endedAt - sigtermAt} ms`);
  }
  assert.equal(anthropic.status, 200);
  assert.match(
    anthropic.text,
    /event: error\ndata: \{"type":"error","error":\{"type":"overloaded_error","message":"server shutting down/,
  );
  assert.doesNotMatch(anthropic.text, /max_tokens|message_stop|end_turn/);
  assert.equal(ollama.status, 200);
  const ollamaLines = ollama.text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.match(String(ollamaLines.at(-1)?.error), /^server shutting down/);
  assert.ok(!ollamaLines.some((line) => line.done === true), 'no done line after a cut');
  assert.equal(koboldQueued.status, 200);
  // Kobold's error form: an error event (the envelope KoboldCpp clients parse), then a final event whose finish
  // reason is "error", never "length" or "stop".
  assert.match(
    koboldQueued.text,
    /event: error\ndata: \{"detail":\{"msg":"server shutting down[^"]*","type":"service_unavailable"\}\}\n\n/,
  );
  assert.match(koboldQueued.text, /event: message\ndata: \{"token": "", "finish_reason": "error"\}\n\n$/);
  assert.equal(openaiQueued.status, 503);
  assert.match(JSON.parse(openaiQueued.text).error.message, /^server shutting down/);

  // During the grace new work is refused with 503 + Retry-After, in each protocol's envelope.
  const [refusedKobold, refusedOpenai] = await refusing;
  assert.equal(refusedKobold.status, 503);
  assert.ok(Number(refusedKobold.headers.get('retry-after')) > 0);
  assert.equal(JSON.parse(refusedKobold.text).detail.type, 'service_unavailable');
  assert.match(JSON.parse(refusedKobold.text).detail.msg, /^server shutting down/);
  assert.equal(refusedOpenai.status, 503);
  assert.ok(Number(refusedOpenai.headers.get('retry-after')) > 0);
  assert.match(JSON.parse(refusedOpenai.text).error.message, /^server shutting down/);
  assert.ok(refusedOpenai.endedAt - sigtermAt < 1000, 'refused inside the grace');

  // The running ones are cut when the grace ends: an error, never a normal finish.
  const kobold = await koboldSync;
  const openai = await openaiStream;
  assert.ok(
    kobold.endedAt - sigtermAt >= 900,
    `the Kobold request ran for the grace: ${kobold.endedAt - sigtermAt} ms`,
  );
  assert.equal(kobold.status, 503, kobold.text);
  assert.match(JSON.parse(kobold.text).detail.msg, /^server shutting down/);
  assert.equal(openai.status, 200);
  assert.equal(openai.failed, undefined, 'the stream ended, it was not reset');
  const openaiEvents = openai.text.split('\n\n').filter((frame) => frame.includes('data: '));
  assert.match(openaiEvents.at(-1) ?? '', /data: \{"error":\{"message":"server shutting down"/);
  assert.doesNotMatch(openai.text, /\[DONE\]|"finish_reason":"(length|stop)"/);

  const exit = await Promise.race([server.exited, sleep(3000 + 1000).then(() => undefined)]);
  assert.ok(exit, `the process exited (output: ${server.logs()})`);
  assert.equal(exit.code, 0, server.logs());
  assert.ok(exit.at - sigtermAt < 1000 + 2000, `exit ${exit.at - sigtermAt} ms after SIGTERM, grace 1 s`);
  halfBody.destroy();
  halfLine.destroy();
});

test('SIGTERM: a generation that finishes within the grace finishes normally, and the exit does not wait out the grace', async (t) => {
  const server = await serve(['--parallel', '1', '--contextsize', '1024', '--shutdown-grace', '20']);
  t.after(() => server.child.kill('SIGKILL'));
  const { url } = server;
  const bias = await endTokenBias(url);
  let started = false;
  const stream = collect(
    post(`${url}/api/extra/generate/stream`, {
      prompt: 'Once',
      max_length: 300,
      ban_eos_token: true,
      logit_bias: bias,
      genkey: 'KCPP7001',
    }),
    (text) => {
      if (text.includes('"token": "')) started = true;
    },
  );
  await until('the first token', () => started);
  const sigtermAt = Date.now();
  server.child.kill('SIGTERM');
  const result = await stream;
  assert.match(result.text, /"finish_reason": "length"\}\n\n$/, 'max_length reached: the normal end');
  assert.doesNotMatch(result.text, /event: error/);
  const exit = await Promise.race([server.exited, sleep(20_000).then(() => undefined)]);
  assert.ok(exit, server.logs());
  assert.equal(exit.code, 0, server.logs());
  assert.ok(exit.at - result.endedAt < 2000, `exit ${exit.at - result.endedAt} ms after the last generation ended`);
  assert.ok(exit.at - sigtermAt < 20_000);
});
