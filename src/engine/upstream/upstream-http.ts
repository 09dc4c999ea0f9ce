import { KindlingError } from '../../core/kindling-error.ts';

/** A probe or tokenizer call that takes longer than this is an unreachable upstream, not a hung request. */
const CALL_TIMEOUT_MS = 30_000;

/** Why a call could not be answered: the status (0: no answer at all) and the upstream's own words. */
export class UpstreamFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The one HTTP door to the upstream server: every request goes to the URL given with `--upstream` (the OpenAI
 * base, e.g. `http://gpu-1:8000/v1`) or to its root (the same URL without `/v1`, where llama-server's and vLLM's
 * `/tokenize`, llama-server's `/props` and Kobold's `/api/extra/*` live). Nothing else is ever contacted.
 */
export class UpstreamHttp {
  readonly base: string;
  readonly root: string;

  constructor(
    url: string,
    private readonly apiKey?: string,
  ) {
    this.base = url.replace(/\/+$/, '');
    this.root = this.base.replace(/\/v1$/, '');
  }

  private headers(json: boolean): Record<string, string> {
    return {
      ...(json ? { 'content-type': 'application/json' } : {}),
      ...(this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {}),
    };
  }

  /**
   * A JSON answer from `path` (relative to the root, or to the OpenAI base with `openai`): GET without a body,
   * POST with one. Throws `UpstreamFailure` (status 0 when nothing answered).
   */
  async json(path: string, body?: unknown, options: { openai?: boolean; signal?: AbortSignal } = {}): Promise<unknown> {
    const url = `${options.openai ? this.base : this.root}${path}`;
    const timeout = AbortSignal.timeout(CALL_TIMEOUT_MS);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    let response: Response;
    try {
      response = await fetch(url, {
        method: body === undefined ? 'GET' : 'POST',
        headers: this.headers(body !== undefined),
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal,
      });
    } catch (error) {
      options.signal?.throwIfAborted();
      throw new UpstreamFailure(0, causeOf(error));
    }
    const text = await response.text().catch((error: unknown) => {
      throw new UpstreamFailure(0, causeOf(error));
    });
    if (!response.ok) throw new UpstreamFailure(response.status, errorText(text) || response.statusText);
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new UpstreamFailure(response.status, `not JSON: ${text.slice(0, 200)}`);
    }
  }

  /** POSTs a streaming request to the OpenAI base; the response is returned once its head arrived and was a 2xx. */
  async stream(path: string, body: unknown, signal: AbortSignal): Promise<Response> {
    let response: Response;
    try {
      response = await fetch(`${this.base}${path}`, {
        method: 'POST',
        headers: { ...this.headers(true), accept: 'text/event-stream' },
        body: JSON.stringify(body),
        signal,
      });
    } catch (error) {
      signal.throwIfAborted();
      throw this.unavailable(causeOf(error));
    }
    if (!response.ok || !response.body) {
      const text = await response.text().catch(() => '');
      throw this.refusal(response.status, errorText(text) || response.statusText);
    }
    return response;
  }

  /** The upstream did not answer (or answered with a server error): a 503 that names it. */
  unavailable(detail: string): KindlingError {
    return new KindlingError('unavailable', `The upstream server ${this.base} is unavailable: ${detail}`, {
      retryAfterSeconds: 5,
    });
  }

  /** An upstream's error answer as ours: its 4xx is the client's (it names the upstream's reason), the rest 503. */
  refusal(status: number, detail: string): KindlingError {
    if (status === 0 || status >= 500 || status === 429 || status === 401 || status === 403)
      return this.unavailable(status ? `HTTP ${status}: ${detail}` : detail);
    return new KindlingError('bad_input', `The upstream server ${this.base} refused the request: ${detail}`);
  }

  /** `UpstreamFailure` → `KindlingError`; anything else (an abort) passes through. */
  failure(error: unknown): unknown {
    return error instanceof UpstreamFailure ? this.refusal(error.status, error.message) : error;
  }
}

function causeOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  if (cause instanceof Error) return cause.message || (cause as { code?: string }).code || error.message;
  return error.message;
}

/** The message inside an error body (OpenAI's `{error: {message}}`, llama.cpp's, Kobold's `{detail: {msg}}`). */
export function errorText(text: string): string {
  try {
    const body = JSON.parse(text) as Record<string, unknown>;
    const error = body.error ?? body.detail;
    if (typeof error === 'string') return error;
    if (error && typeof error === 'object') {
      const inner = error as Record<string, unknown>;
      const message = inner.message ?? inner.msg;
      if (typeof message === 'string') return message;
    }
    if (typeof body.message === 'string') return body.message;
  } catch {}
  return text.slice(0, 300).trim();
}
