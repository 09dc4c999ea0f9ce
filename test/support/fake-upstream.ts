import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What kind of server the fake plays: llama-server's routes, or a bare OpenAI one (Ollama's `/v1`: no tokenizer). */
export type FakeUpstreamKind = 'llama.cpp' | 'openai';

export interface FakeUpstreamOptions {
  kind: FakeUpstreamKind;
  /** The streamed answer, one chunk per piece (one piece per "token"). */
  pieces?: string[];
  /** Milliseconds between chunks. */
  delayMs?: number;
  /** `stop` (EOS) or `length` at the end of the pieces. */
  finish?: 'stop' | 'length';
  /** Cut the connection after this many chunks, with no finish and no `[DONE]`. */
  cutAfter?: number;
  /** Answer every completion with this HTTP status and message instead. */
  refuse?: { status: number; message: string };
}

/**
 * A scripted OpenAI-compatible upstream on a free port: records each completion body and whether its
 * connection was closed before the stream ended (an abort reaching the upstream). One character is one token.
 */
export class FakeUpstream {
  readonly bodies: Record<string, unknown>[] = [];
  /** Completion requests whose client went away before the last chunk. */
  abandoned = 0;
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(options: FakeUpstreamOptions): Promise<FakeUpstream> {
    let fake: FakeUpstream | undefined;
    const server = createServer((req, res) => void fake?.handle(options, req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    fake = new FakeUpstream(server, `http://127.0.0.1:${port}/v1`);
    return fake;
  }

  private async handle(options: FakeUpstreamOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
    const json = (status: number, value: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value));
    };
    const llama = options.kind === 'llama.cpp';
    switch (`${req.method} ${req.url}`) {
      case 'GET /v1/models':
        return json(200, {
          object: 'list',
          data: [
            {
              id: llama ? '/models/fake-model.gguf' : 'fake-model',
              object: 'model',
              owned_by: llama ? 'llamacpp' : 'library',
              ...(llama ? { meta: { n_vocab: 1000, n_ctx_train: 4096 } } : {}),
            },
          ],
        });
      case 'GET /props':
        return llama
          ? json(200, { default_generation_settings: { n_ctx: 1024 }, total_slots: 2 })
          : json(404, { error: 'not found' });
      case 'POST /tokenize': {
        if (!llama) return json(404, { error: 'not found' });
        const text = String(body.content ?? '');
        return json(200, {
          tokens: [...(body.add_special ? [1] : []), ...[...text].map((c) => c.codePointAt(0) ?? 0)],
        });
      }
      case 'POST /detokenize':
        if (!llama) return json(404, { error: 'not found' });
        return json(200, {
          content: (body.tokens as number[])
            .filter((t) => t !== 1)
            .map((t) => String.fromCodePoint(t))
            .join(''),
        });
      case 'POST /v1/completions':
        return this.complete(options, body, res);
      default:
        return json(404, { error: 'not found' });
    }
  }

  private async complete(
    options: FakeUpstreamOptions,
    body: Record<string, unknown>,
    res: ServerResponse,
  ): Promise<void> {
    this.bodies.push(body);
    if (options.refuse) {
      res.writeHead(options.refuse.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: options.refuse.message, code: options.refuse.status } }));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    let gone = false;
    res.on('close', () => {
      gone = !res.writableEnded;
    });
    const pieces = (options.pieces ?? ['a', 'b', 'c']).slice(0, Number(body.max_tokens ?? 16));
    const send = (value: unknown) => res.write(`data: ${JSON.stringify(value)}\n\n`);
    const choice = (text: string, finish: string | null) => ({
      object: 'text_completion',
      choices: [{ index: 0, text, finish_reason: finish }],
    });
    for (let i = 0; i < pieces.length; i++) {
      if (options.delayMs) await new Promise((resolve) => setTimeout(resolve, options.delayMs));
      if (gone) {
        this.abandoned++;
        return;
      }
      if (options.cutAfter !== undefined && i >= options.cutAfter) {
        res.destroy();
        return;
      }
      send(choice(pieces[i] as string, null));
    }
    const finish = pieces.length < (options.pieces ?? ['a', 'b', 'c']).length ? 'length' : (options.finish ?? 'stop');
    send(choice('', finish));
    const prompt = body.prompt;
    send({
      object: 'text_completion',
      choices: [],
      usage: {
        prompt_tokens: Array.isArray(prompt) ? prompt.length : String(prompt).length,
        completion_tokens: pieces.length,
        total_tokens: 0,
        prompt_tokens_details: { cached_tokens: 1 },
      },
    });
    res.end('data: [DONE]\n\n');
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
