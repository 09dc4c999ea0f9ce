import type { ServerResponse } from 'node:http';
import { FakeGeneration, type GenerationEvent } from './fake-generation.ts';
import {
  type FakeServer,
  type RecordedRequest,
  sendJson,
  startFakeHttpServer,
  startSse,
  write,
} from './fake-http-server.ts';
import { asciiJsonString, seededTokens } from './seeded-tokens.ts';

export interface FakeKoboldOptions {
  /**
   * `kindling`: our server's extensions (`id:` lines, `: ping`, resume by Last-Event-ID, 409 on a live genkey,
   * `/check` status) and generations that outlive their connection. `koboldcpp`: KoboldCpp 1.76 exactly (no ids,
   * no comments, `"finish_reason": "null"`, ASCII-escaped JSON, a stream's generation aborted when its client
   * disconnects).
   */
  flavor?: 'kindling' | 'koboldcpp';
  /** Token seed when the request has no `sampler_seed`. Default 1. */
  seed?: number;
  /** Tokens per generation when the request has no `max_length`. Default 40. */
  tokenCount?: number;
  /** Time between tokens. Default 2 ms. */
  tokenIntervalMs?: number;
  /** Kindling: `: ping` comment interval on open streams; 0 = none. Default 0. */
  pingIntervalMs?: number;
  /** Kindling: send this many `: ping queued N` comments (as our server does) (N counting down, 20 ms apart) before generating. */
  queuedComments?: number;
  /** The first stream connection stops writing (without closing) after this many events. */
  silentAfterEvents?: number;
  /** The first `count` generate requests are answered with this status and body. */
  failFirst?: { count: number; status: number; body?: unknown; headers?: Record<string, string> };
  /** Finish reason when all tokens were produced. Default `length`. */
  finishReason?: string;
}

export interface FakeKobold extends FakeServer {
  /** Generations by genkey. */
  generations: Map<string, FakeGeneration>;
  /** Genkeys that `/api/extra/abort` was called with. */
  aborts: string[];
  /** Number of stream connections opened. */
  streamConnections: number;
  /** The text the fake produces for a seed and length: what an uncut stream must deliver. */
  expectedText(seed?: number, count?: number): string;
}

export async function startFakeKobold(options: FakeKoboldOptions = {}): Promise<FakeKobold> {
  const flavor = options.flavor ?? 'kindling';
  const generations = new Map<string, FakeGeneration>();
  const aborts: string[] = [];
  let failuresLeft = options.failFirst?.count ?? 0;
  let silentLeft = options.silentAfterEvents === undefined ? 0 : 1;
  let keyCounter = 0;
  const intervalMs = options.tokenIntervalMs ?? 2;

  const tokensFor = (body: Record<string, unknown>): string[] =>
    seededTokens(
      typeof body['sampler_seed'] === 'number' ? body['sampler_seed'] : (options.seed ?? 1),
      typeof body['max_length'] === 'number' ? body['max_length'] : (options.tokenCount ?? 40),
    );

  const startGeneration = (genkey: string, body: Record<string, unknown>, startDelayMs = 0): FakeGeneration => {
    generations.get(genkey)?.dispose();
    const generation = new FakeGeneration(tokensFor(body), {
      intervalMs,
      startDelayMs,
      ...(options.finishReason ? { finishReason: options.finishReason } : {}),
    });
    generations.set(genkey, generation);
    return generation;
  };

  const frame = (event: GenerationEvent): string => {
    if (flavor === 'koboldcpp') {
      const finish = event.finishReason === null ? '"null"' : JSON.stringify(event.finishReason);
      return `event: message\ndata: {"token": ${asciiJsonString(event.token)}, "finish_reason": ${finish}}\n\n`;
    }
    return `id: ${event.id}\nevent: message\ndata: ${JSON.stringify({ token: event.token, finish_reason: event.finishReason })}\n\n`;
  };

  const fake: FakeKobold = Object.assign(
    await startFakeHttpServer(async (request, _req, res) => {
      const path = request.path.split('?')[0] ?? '/';
      const body = isObject(request.body) ? request.body : {};
      switch (`${request.method} ${path}`) {
        case 'GET /api/v1/model':
          return sendJson(res, 200, { result: 'koboldcpp/fake-model' });
        case 'GET /api/extra/version':
          return sendJson(res, 200, {
            result: 'KoboldCpp',
            version: '1.76',
            protected: false,
            ...(flavor === 'kindling' ? { kindling: '0.1.0' } : {}),
          });
        case 'GET /api/extra/true_max_context_length':
          return sendJson(res, 200, { value: 4096 });
        case 'GET /api/extra/perf': {
          const busy = [...generations.values()].some((g) => !g.done);
          return sendJson(res, 200, { idle: busy ? 0 : 1, queue: 0 });
        }
        case 'POST /api/extra/tokencount': {
          const prompt = typeof body['prompt'] === 'string' ? body['prompt'] : '';
          const ids = prompt
            .split(/\s+/)
            .filter(Boolean)
            .map((_, i) => i + 1);
          return sendJson(res, 200, { value: ids.length, ids });
        }
        case 'POST /api/extra/abort': {
          const genkey = typeof body['genkey'] === 'string' ? body['genkey'] : '';
          aborts.push(genkey);
          const generation = generations.get(genkey);
          if (!generation || generation.done) return sendJson(res, 200, { success: 'false', done: 'false' });
          generation.stop(flavor === 'koboldcpp' ? 'length' : 'abort');
          return sendJson(res, 200, { success: 'true', done: 'true' });
        }
        case 'POST /api/extra/generate/check':
          return sendJson(res, 200, checkBody(flavor, generations.get(String(body['genkey'] ?? ''))));
        case 'POST /api/v1/generate':
        case 'POST /api/extra/generate/stream': {
          if (failuresLeft > 0) {
            failuresLeft -= 1;
            const failure = options.failFirst;
            return sendJson(
              res,
              failure?.status ?? 503,
              failure?.body ?? {
                detail: { msg: 'Server is busy; please try again later.', type: 'service_unavailable' },
              },
              failure?.headers,
            );
          }
          const genkey = typeof body['genkey'] === 'string' ? body['genkey'] : `KCPP${++keyCounter}`;
          if (path === '/api/v1/generate') return serveSync(res, genkey, body);
          return serveStream(request, res, genkey, body);
        }
        default:
          res.writeHead(404, { 'content-type': 'text/html' });
          res.end('Error: HTTP Server is running, but this endpoint does not exist. Please check the URL.');
      }
    }),
    {
      generations,
      aborts,
      streamConnections: 0,
      expectedText: (seed = options.seed ?? 1, count = options.tokenCount ?? 40) => seededTokens(seed, count).join(''),
    },
  );

  async function serveSync(res: ServerResponse, genkey: string, body: Record<string, unknown>): Promise<void> {
    const existing = generations.get(genkey);
    if (flavor === 'kindling' && existing && !existing.done) {
      return sendJson(res, 409, { detail: { msg: `generation ${genkey} is already running`, type: 'conflict' } });
    }
    const generation = startGeneration(genkey, body);
    // Like both real servers, a sync generation runs to the end even when its client has gone.
    await new Promise<void>((resolve) => generation.follow(0, (event) => event.finishReason !== null && resolve()));
    const final = generation.events.at(-1);
    sendJson(res, 200, { results: [{ text: generation.text, finish_reason: final?.finishReason ?? 'length' }] });
  }

  async function serveStream(
    request: RecordedRequest,
    res: ServerResponse,
    genkey: string,
    body: Record<string, unknown>,
  ): Promise<void> {
    fake.streamConnections += 1;
    const lastEventHeader = request.headers['last-event-id'];
    const existing = generations.get(genkey);
    let afterId = 0;
    let generation: FakeGeneration;
    if (flavor === 'kindling' && typeof lastEventHeader === 'string' && existing) {
      afterId = Number(lastEventHeader) || 0;
      generation = existing;
    } else if (flavor === 'kindling' && existing && !existing.done) {
      return sendJson(res, 409, { detail: { msg: `generation ${genkey} is already running`, type: 'conflict' } });
    } else {
      const queued = flavor === 'kindling' ? (options.queuedComments ?? 0) : 0;
      generation = startGeneration(genkey, body, queued * 20);
    }
    startSse(res);
    let silent = false;
    let sent = 0;
    if (silentLeft > 0) {
      silentLeft -= 1;
      silent = true;
    }
    const timers: Array<ReturnType<typeof setInterval>> = [];
    if (flavor === 'kindling' && !request.headers['last-event-id']) {
      for (let n = options.queuedComments ?? 0; n > 0; n--)
        await write(res, `: ping queued ${n}\n\n`).then(() => new Promise((r) => setTimeout(r, 20)));
    }
    if (flavor === 'kindling' && (options.pingIntervalMs ?? 0) > 0) {
      timers.push(
        setInterval(() => {
          // A silenced connection goes fully quiet, pings included: that is what the heartbeat must catch.
          if (!(silent && sent >= (options.silentAfterEvents ?? 0))) void write(res, ': ping\n\n');
        }, options.pingIntervalMs),
      );
    }
    const unfollow = generation.follow(afterId, (event) => {
      if (silent && sent >= (options.silentAfterEvents ?? 0)) return;
      sent += 1;
      void write(res, frame(event));
      if (event.finishReason !== null) res.end();
    });
    if (generation.done && afterId >= (generation.events.at(-1)?.id ?? 0)) res.end();
    res.on('close', () => {
      unfollow();
      for (const timer of timers) clearInterval(timer);
      // KoboldCpp notices a gone client at its next write and aborts; ours keeps generating for a resume.
      if (flavor === 'koboldcpp' && !generation.done) generation.stop('length');
    });
  }

  const close = fake.close;
  fake.close = async () => {
    for (const generation of generations.values()) generation.dispose();
    await close();
  };
  return fake;
}

function checkBody(flavor: 'kindling' | 'koboldcpp', generation: FakeGeneration | undefined): unknown {
  if (flavor === 'koboldcpp') return { results: [{ text: generation?.text ?? '' }] };
  if (!generation) return { results: [{ text: '', status: 'unknown' }] };
  const last = generation.events.at(-1);
  return {
    results: [
      {
        text: generation.text,
        status: generation.done ? 'done' : generation.events.length === 0 ? 'queued' : 'running',
        last_event_id: last?.id ?? 0,
        finish_reason: generation.done ? (last?.finishReason ?? null) : null,
        queue_position: 0,
      },
    ],
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
