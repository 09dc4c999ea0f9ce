import { defaultServerConfig, type ServerConfig } from '../../src/config/server-config.ts';
import type { ProtocolDescriptor } from '../../src/core/protocol.ts';
import { type RunningServer, startServer } from '../../src/main.ts';
import { withDeadline } from './deadline.ts';
import { testModelPath } from './test-model.ts';

/**
 * The real server on a real (tiny, generated) model, on a free port, with one decoding thread so two
 * test files can run side by side on two cores.
 */
export async function startTestServer(
  overrides: Partial<ServerConfig> = {},
  protocols?: readonly ProtocolDescriptor[],
): Promise<RunningServer> {
  const config: ServerConfig = {
    ...defaultServerConfig(overrides.modelPath ?? testModelPath()),
    port: 0,
    threads: 1,
    gpuLayers: 0,
    parallel: 2,
    contextSize: 512,
    logLevel: 'silent',
    // Tests close their servers with generations still running: cut them at once rather than after a grace.
    shutdownGraceMs: 0,
    ...overrides,
  };
  const server = await startServer(config, protocols);
  const close = server.close.bind(server);
  // Closing drains generations; a server that cannot must fail the file, not hang it.
  server.close = () => withDeadline(close(), 30_000, 'the test server to close');
  return server;
}

/** The longest a test waits for one whole answer (a generation included) before failing. */
const ANSWER_DEADLINE_MS = 60_000;

export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const { response, text } = await withDeadline(
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    }).then(async (response) => ({ response, text: await response.text() })),
    ANSWER_DEADLINE_MS,
    `the answer to POST ${url}`,
  );
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: response.status, body: parsed, headers: response.headers };
}

export async function getJson(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const { response, text } = await withDeadline(
    fetch(url, { headers }).then(async (response) => ({ response, text: await response.text() })),
    ANSWER_DEADLINE_MS,
    `the answer to GET ${url}`,
  );
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: response.status, body: parsed, headers: response.headers };
}

/**
 * A `logit_bias` that bans every token the test models can end a text with: EOS and `<|im_end|>` (llama.cpp
 * treats it as end-of-generation too), so a generation only ends when the test ends it.
 */
export function banEndTokens(server: RunningServer): Record<string, number> {
  const { engine } = server.context;
  const ends = [engine.eosToken, ...engine.tokenize('<|im_end|>', { special: true, addBos: false })];
  return Object.fromEntries(
    ends.filter((id): id is number => id !== undefined && engine.isEog(id)).map((id) => [String(id), -100]),
  );
}

/** The principal (see src/server/principal.ts) of a test client on loopback: its generations' owner. */
export const LOCAL_PRINCIPAL = 'addr:127.0.0.1';
