import { type FakeServer, sendJson, startFakeHttpServer, startSse, write } from './fake-http-server.ts';
import { seededTokens } from './seeded-tokens.ts';

export interface FakeAnthropicOptions {
  seed?: number;
  /** Tokens per answer, capped by the request's `max_tokens`. Default 20. */
  tokenCount?: number;
  tokenIntervalMs?: number;
  /** A `ping` event after every this many deltas (Anthropic sends them irregularly). Default 5. */
  pingEvery?: number;
  /** After this many deltas, send `event: error` with this error type and end. */
  errorAfterTokens?: number;
  errorType?: string;
  /** Requests must carry this `x-api-key`. */
  apiKey?: string;
  failFirst?: { count: number; status: number; body?: unknown; headers?: Record<string, string> };
}

export interface FakeAnthropic extends FakeServer {
  expectedText(seed?: number, count?: number): string;
}

/**
 * Anthropic's Messages API stream: `message_start`, `content_block_start`, `ping`, `content_block_delta`
 * (`text_delta`), `content_block_stop`, `message_delta` (stop_reason, output usage), `message_stop`, and the
 * in-band `event: error`. Validates `x-api-key` and `anthropic-version` the way the real API does.
 */
export async function startFakeAnthropic(options: FakeAnthropicOptions = {}): Promise<FakeAnthropic> {
  let failuresLeft = options.failFirst?.count ?? 0;
  const fake: FakeAnthropic = Object.assign(
    await startFakeHttpServer(async (request, _req, res) => {
      const path = request.path.split('?')[0];
      if (options.apiKey !== undefined && request.headers['x-api-key'] !== options.apiKey) {
        return sendJson(res, 401, {
          type: 'error',
          error: { type: 'authentication_error', message: 'invalid x-api-key' },
        });
      }
      if (request.method === 'GET' && path === '/v1/models') {
        return sendJson(res, 200, {
          data: [{ type: 'model', id: 'claude-fake-1', display_name: 'Claude Fake' }],
          has_more: false,
        });
      }
      if (request.method !== 'POST' || path !== '/v1/messages') {
        return sendJson(res, 404, { type: 'error', error: { type: 'not_found_error', message: 'Not found' } });
      }
      if (!request.headers['anthropic-version']) {
        return sendJson(res, 400, {
          type: 'error',
          error: { type: 'invalid_request_error', message: 'anthropic-version: header is required' },
        });
      }
      if (failuresLeft > 0) {
        failuresLeft -= 1;
        const f = options.failFirst;
        return sendJson(
          res,
          f?.status ?? 529,
          f?.body ?? { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } },
          f?.headers,
        );
      }
      const body = request.body as Record<string, unknown>;
      const maxTokens = typeof body['max_tokens'] === 'number' ? body['max_tokens'] : 0;
      if (!maxTokens) {
        return sendJson(res, 400, {
          type: 'error',
          error: { type: 'invalid_request_error', message: 'max_tokens: Field required' },
        });
      }
      const count = Math.min(options.tokenCount ?? 20, maxTokens);
      const tokens = seededTokens(options.seed ?? 1, count);
      const stopReason = count < (options.tokenCount ?? 20) ? 'max_tokens' : 'end_turn';
      const model = typeof body['model'] === 'string' ? body['model'] : 'claude-fake-1';
      const inputTokens = JSON.stringify(body['messages']).split(/\s+/).length;
      let closed = false;
      res.on('close', () => {
        closed = true;
      });
      const send = (event: string, data: unknown) => write(res, `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      startSse(res);
      await send('message_start', {
        type: 'message_start',
        message: {
          id: 'msg_01Fake',
          type: 'message',
          role: 'assistant',
          model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: { input_tokens: inputTokens, output_tokens: 1 },
        },
      });
      await send('content_block_start', {
        type: 'content_block_start',
        index: 0,
        content_block: { type: 'text', text: '' },
      });
      await send('ping', { type: 'ping' });
      for (const [i, token] of tokens.entries()) {
        if (closed) return;
        if (options.errorAfterTokens !== undefined && i >= options.errorAfterTokens) {
          await send('error', {
            type: 'error',
            error: { type: options.errorType ?? 'overloaded_error', message: 'Overloaded' },
          });
          res.end();
          return;
        }
        await send('content_block_delta', {
          type: 'content_block_delta',
          index: 0,
          delta: { type: 'text_delta', text: token },
        });
        if ((i + 1) % (options.pingEvery ?? 5) === 0) await send('ping', { type: 'ping' });
        await new Promise((resolve) => setTimeout(resolve, options.tokenIntervalMs ?? 1));
      }
      await send('content_block_stop', { type: 'content_block_stop', index: 0 });
      await send('message_delta', {
        type: 'message_delta',
        delta: { stop_reason: stopReason, stop_sequence: null },
        usage: { output_tokens: count },
      });
      await send('message_stop', { type: 'message_stop' });
      res.end();
    }),
    {
      expectedText: (seed = options.seed ?? 1, count = options.tokenCount ?? 20) => seededTokens(seed, count).join(''),
    },
  );
  return fake;
}
