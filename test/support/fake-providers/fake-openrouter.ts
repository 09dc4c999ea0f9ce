import type { ServerResponse } from 'node:http';
import { FakeGeneration, type GenerationEvent } from './fake-generation.ts';
import { type FakeServer, sendJson, startFakeHttpServer, startSse, write } from './fake-http-server.ts';
import { seededTokens } from './seeded-tokens.ts';

export interface FakeOpenRouterOptions {
  /** Token seed when the request has no `seed`. Default 1. */
  seed?: number;
  /** Tokens per answer when the request has no `max_tokens`. Default 30. */
  tokenCount?: number;
  tokenIntervalMs?: number;
  /** `: OPENROUTER PROCESSING` comments sent before the first chunk, 10 ms apart. Default 2. */
  processingComments?: number;
  /** After this many tokens, send OpenRouter's mid-stream error chunk and end the stream. */
  errorAfterTokens?: number;
  /** After this many tokens the first connection goes silent without closing (heartbeat tests). */
  silentAfterTokens?: number;
  /** KoboldCpp 1.76 quirks: `finish_reason: "null"` mid-stream and `data: [DONE]` without the blank line. */
  koboldcppQuirks?: boolean;
  /** When set, requests must send `Authorization: Bearer <apiKey>`; others get OpenRouter's 401. */
  apiKey?: string;
  /** The first `count` completion requests get this status and body. */
  failFirst?: { count: number; status: number; body?: unknown; headers?: Record<string, string> };
  /** Our server's extension: `id:` lines and resume with `X-Kindling-Stream` + `Last-Event-ID`. */
  resumable?: boolean;
  finishReason?: string;
  models?: string[];
}

export interface FakeOpenRouter extends FakeServer {
  expectedText(seed?: number, count?: number): string;
  streamConnections: number;
}

/**
 * OpenRouter's streaming format, byte for byte where it matters: comment keepalives, `data:` chunks with
 * `choices[].delta`, a usage chunk with `choices: []` when `stream_options.include_usage` is set, in-band error
 * chunks, and `data: [DONE]`. Serves `/v1` and `/api/v1` paths, chat and text completions, and `/models`.
 */
export async function startFakeOpenRouter(options: FakeOpenRouterOptions = {}): Promise<FakeOpenRouter> {
  let failuresLeft = options.failFirst?.count ?? 0;
  let silentLeft = options.silentAfterTokens === undefined ? 0 : 1;
  const resumable = new Map<string, FakeGeneration>();
  const generations = new Set<FakeGeneration>();

  const fake: FakeOpenRouter = Object.assign(
    await startFakeHttpServer(async (request, _req, res) => {
      const path = (request.path.split('?')[0] ?? '/').replace(/^\/api\/v1\//, '/v1/');
      const auth = request.headers['authorization'];
      if (options.apiKey !== undefined && auth !== `Bearer ${options.apiKey}`) {
        return sendJson(res, 401, { error: { message: 'No auth credentials found', code: 401 } });
      }
      if (request.method === 'GET' && path === '/v1/models') {
        return sendJson(res, 200, {
          data: (options.models ?? ['fake/model-a', 'fake/model-b']).map((id) => ({ id, object: 'model' })),
        });
      }
      const chat = path === '/v1/chat/completions';
      if (request.method !== 'POST' || (!chat && path !== '/v1/completions')) {
        return sendJson(res, 404, { error: { message: `Not found: ${request.path}`, code: 404 } });
      }
      if (failuresLeft > 0) {
        failuresLeft -= 1;
        const f = options.failFirst;
        return sendJson(
          res,
          f?.status ?? 502,
          f?.body ?? { error: { message: 'Provider returned error', code: f?.status ?? 502 } },
          f?.headers,
        );
      }
      const body = (typeof request.body === 'object' && request.body !== null ? request.body : {}) as Record<
        string,
        unknown
      >;
      const tokens = seededTokens(
        typeof body['seed'] === 'number' ? body['seed'] : (options.seed ?? 1),
        typeof body['max_tokens'] === 'number' ? body['max_tokens'] : (options.tokenCount ?? 30),
      );
      if (body['stream'] !== true) {
        return sendJson(res, 200, {
          id: 'gen-sync',
          object: chat ? 'chat.completion' : 'text_completion',
          choices: [
            chat
              ? { index: 0, message: { role: 'assistant', content: tokens.join('') }, finish_reason: 'stop' }
              : { index: 0, text: tokens.join(''), finish_reason: 'stop' },
          ],
        });
      }
      fake.streamConnections += 1;
      const streamKey = request.headers['x-kindling-stream'];
      const lastEventId = request.headers['last-event-id'];
      let generation: FakeGeneration;
      let afterId = 0;
      const existing = typeof streamKey === 'string' ? resumable.get(streamKey) : undefined;
      if (options.resumable && existing && typeof lastEventId === 'string') {
        generation = existing;
        afterId = Number(lastEventId) || 0;
      } else {
        generation = new FakeGeneration(tokens, {
          intervalMs: options.tokenIntervalMs ?? 1,
          finishReason: options.finishReason ?? 'stop',
        });
        generations.add(generation);
        if (options.resumable && typeof streamKey === 'string') resumable.set(streamKey, generation);
      }
      startSse(res);
      if (afterId === 0) {
        for (let i = 0; i < (options.processingComments ?? 2); i++) {
          await write(res, ': OPENROUTER PROCESSING\n\n');
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      }
      serveChunks(res, generation, afterId, {
        chat,
        includeUsage: isRecord(body['stream_options']) && body['stream_options']['include_usage'] === true,
        model: typeof body['model'] === 'string' ? body['model'] : 'fake/model-a',
        promptTokens: JSON.stringify(body['messages'] ?? body['prompt'] ?? '').split(/\s+/).length,
        silent: silentLeft-- > 0,
        keepAlive: Boolean(options.resumable),
        options,
      });
    }),
    {
      streamConnections: 0,
      expectedText: (seed = options.seed ?? 1, count = options.tokenCount ?? 30) => seededTokens(seed, count).join(''),
    },
  );

  const close = fake.close;
  fake.close = async () => {
    for (const generation of generations) generation.dispose();
    await close();
  };
  return fake;
}

interface ChunkContext {
  chat: boolean;
  includeUsage: boolean;
  model: string;
  promptTokens: number;
  silent: boolean;
  /** Resumable generations outlive their connection; the others stop when the client leaves. */
  keepAlive: boolean;
  options: FakeOpenRouterOptions;
}

function serveChunks(res: ServerResponse, generation: FakeGeneration, afterId: number, ctx: ChunkContext): void {
  const { options } = ctx;
  const base = {
    id: 'gen-1700000000-abc',
    provider: 'FakeProvider',
    model: ctx.model,
    object: ctx.chat ? 'chat.completion.chunk' : 'text_completion',
    created: 1700000000,
  };
  const nullFinish = options.koboldcppQuirks ? 'null' : null;
  const choice = (text: string, finish: string | null) =>
    ctx.chat
      ? {
          index: 0,
          delta: { role: 'assistant', content: text },
          finish_reason: finish,
          native_finish_reason: finish,
          logprobs: null,
        }
      : { index: 0, text, finish_reason: finish, logprobs: null };
  let tokens = 0;
  const idLine = (event: GenerationEvent) => (options.resumable ? `id: ${event.id}\n` : '');
  const unfollow = generation.follow(afterId, (event) => {
    if (ctx.silent && tokens >= (options.silentAfterTokens ?? 0)) return;
    if (event.finishReason === null) {
      tokens += 1;
      if (options.errorAfterTokens !== undefined && event.id > options.errorAfterTokens) {
        // OpenRouter's in-band failure: an error object plus finish_reason "error", then the stream ends.
        const error = {
          code: 502,
          message: 'Provider disconnected unexpectedly',
          metadata: { provider_name: 'FakeProvider' },
        };
        void write(res, `data: ${JSON.stringify({ ...base, error, choices: [choice('', 'error')] })}\n\n`);
        res.end();
        generation.stop('error');
        return;
      }
      void write(
        res,
        `${idLine(event)}data: ${JSON.stringify({ ...base, choices: [choice(event.token, nullFinish)] })}\n\n`,
      );
      return;
    }
    let out = `${idLine(event)}data: ${JSON.stringify({ ...base, choices: [choice('', event.finishReason)] })}\n\n`;
    if (ctx.includeUsage) {
      const completion = generation.events.length - 1;
      const usage = {
        prompt_tokens: ctx.promptTokens,
        completion_tokens: completion,
        total_tokens: ctx.promptTokens + completion,
      };
      // Like our server: the usage chunk and [DONE] repeat the finish event's id (one log part, three frames).
      out += `${idLine(event)}data: ${JSON.stringify({ ...base, choices: [], usage })}\n\n`;
    }
    out += options.koboldcppQuirks ? 'data: [DONE]' : `${idLine(event)}data: [DONE]\n\n`;
    void write(res, out);
    res.end();
  });
  if (generation.done && afterId >= (generation.events.at(-1)?.id ?? 0)) {
    // A resume after the last event: nothing to replay, so end the stream the way a finished one ends.
    void write(res, 'data: [DONE]\n\n');
    res.end();
  }
  res.on('close', () => {
    unfollow();
    if (!ctx.keepAlive) generation.stop('abort');
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
