import { type FakeServer, sendJson, startFakeHttpServer, write } from './fake-http-server.ts';
import { seededTokens } from './seeded-tokens.ts';

export interface FakeOllamaOptions {
  seed?: number;
  /** Tokens per answer, capped by `options.num_predict`. Default 20. */
  tokenCount?: number;
  tokenIntervalMs?: number;
  /** After this many tokens, send an `{"error": …}` line and end. */
  errorAfterTokens?: number;
  models?: string[];
}

export interface FakeOllama extends FakeServer {
  expectedText(seed?: number, count?: number): string;
}

/** Ollama's native API: `/api/generate` and `/api/chat` NDJSON streams, `/api/tags`, its `{"error"}` bodies. */
export async function startFakeOllama(options: FakeOllamaOptions = {}): Promise<FakeOllama> {
  const models = options.models ?? ['llama3.2:1b', 'qwen2.5:0.5b'];
  const fake: FakeOllama = Object.assign(
    await startFakeHttpServer(async (request, _req, res) => {
      const path = request.path.split('?')[0];
      if (request.method === 'GET' && path === '/api/tags') {
        return sendJson(res, 200, {
          models: models.map((name) => ({ name, model: name, size: 1000, digest: 'sha256:0' })),
        });
      }
      const chat = path === '/api/chat';
      if (request.method !== 'POST' || (!chat && path !== '/api/generate'))
        return sendJson(res, 404, { error: '404 page not found' });
      const body = request.body as Record<string, unknown>;
      const model = typeof body['model'] === 'string' ? body['model'] : '';
      if (!models.includes(model))
        return sendJson(res, 404, { error: `model "${model}" not found, try pulling it first` });
      const opts = (body['options'] ?? {}) as Record<string, unknown>;
      const limit = typeof opts['num_predict'] === 'number' ? opts['num_predict'] : Number.POSITIVE_INFINITY;
      const count = Math.min(options.tokenCount ?? 20, limit);
      const tokens = seededTokens(typeof opts['seed'] === 'number' ? opts['seed'] : (options.seed ?? 1), count);
      const created_at = '2026-01-01T00:00:00Z';
      const line = (text: string, done: boolean) =>
        chat
          ? { model, created_at, message: { role: 'assistant', content: text }, done }
          : { model, created_at, response: text, done };
      let closed = false;
      res.on('close', () => {
        closed = true;
      });
      if (body['stream'] === false) {
        return sendJson(res, 200, {
          ...line(tokens.join(''), true),
          done_reason: 'stop',
          eval_count: count,
          prompt_eval_count: 3,
        });
      }
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      for (const [i, token] of tokens.entries()) {
        if (closed) return;
        if (options.errorAfterTokens !== undefined && i >= options.errorAfterTokens) {
          await write(
            res,
            `${JSON.stringify({ error: 'an error was encountered while running the model: unexpected EOF' })}\n`,
          );
          res.end();
          return;
        }
        await write(res, `${JSON.stringify(line(token, false))}\n`);
        await new Promise((resolve) => setTimeout(resolve, options.tokenIntervalMs ?? 1));
      }
      const promptText = JSON.stringify(body['messages'] ?? body['prompt'] ?? '');
      const final = {
        ...line('', true),
        done_reason: count < (options.tokenCount ?? 20) ? 'length' : 'stop',
        total_duration: 1000,
        load_duration: 10,
        prompt_eval_count: promptText.split(/\s+/).length,
        prompt_eval_duration: 100,
        eval_count: count,
        eval_duration: 500,
      };
      await write(res, `${JSON.stringify(final)}\n`);
      res.end();
    }),
    {
      expectedText: (seed = options.seed ?? 1, count = options.tokenCount ?? 20) => seededTokens(seed, count).join(''),
    },
  );
  return fake;
}
