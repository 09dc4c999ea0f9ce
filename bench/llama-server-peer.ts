/**
 * llama.cpp's own `llama-server` as a reference peer for the concurrency benchmark: started from a binary
 * the caller built (nothing is downloaded), driven with its native streaming `/completion` endpoint.
 */
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { type ServerProcess, whenServing } from './server-process.ts';

export interface LlamaServerOptions {
  modelPath: string;
  threads: number;
  slots: number;
  /** Whole context, shared by the slots (llama-server splits `-c` between them). */
  contextSize: number;
}

export async function startLlamaServer(binary: string, options: LlamaServerOptions): Promise<ServerProcess> {
  const port = 5900 + Math.floor(Math.random() * 200);
  // Its defaults otherwise (flash attention auto, its own thread pool): the server as users run it.
  const child = spawn(
    binary,
    [
      ...['-m', options.modelPath, '-t', String(options.threads), '-np', String(options.slots)],
      ...['-c', String(options.contextSize), '-ngl', '0', '--host', '127.0.0.1', '--port', String(port)],
      '--no-webui',
    ],
    { stdio: ['ignore', 'ignore', 'ignore'] },
  );
  return whenServing(child, `http://127.0.0.1:${port}`, '/health', `llama-server (${binary})`);
}

/** Streams one `/completion` and times it from the client's side, like `timeKoboldStream`. */
export async function timeLlamaServerStream(
  baseUrl: string,
  body: Record<string, unknown>,
): Promise<{ firstTokenMs: number; tokens: number }> {
  const started = performance.now();
  let first = 0;
  let buffer = '';
  let tokens = 0;
  await new Promise<void>((resolve, reject) => {
    const req = request(
      `${baseUrl}/completion`,
      { method: 'POST', headers: { 'content-type': 'application/json' } },
      (res) => {
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (!first && chunk.includes('"content"')) first = performance.now();
          buffer += chunk;
          // Only the last event (with `stop: true`) carries the count; keep the tail that may hold it.
          const at = buffer.lastIndexOf('"tokens_predicted"');
          if (at >= 0) tokens = Number(/"tokens_predicted":\s*(\d+)/.exec(buffer.slice(at))?.[1] ?? tokens);
          buffer = buffer.slice(-4096);
        });
        res.on('end', resolve);
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify({ ...body, stream: true, cache_prompt: true }));
  });
  return { firstTokenMs: first - started, tokens };
}
