import type { FastifyInstance } from 'fastify';
import { checkModelFile } from './config/model-file.ts';
import type { ServerConfig } from './config/server-config.ts';
import { LlamaEngine } from './engine/llama/llama-engine.ts';
import { Scheduler } from './scheduler/scheduler.ts';
import { createApp, type RouteRegistrar } from './server/app.ts';
import { assertCanListen, describeListenError } from './server/listen-error.ts';
import { registerAnthropicRoutes } from './server/routes/anthropic.ts';
import { registerOllamaRoutes } from './server/routes/ollama.ts';
import { registerOpenaiRoutes } from './server/routes/openai.ts';
import type { ServerContext } from './server/server-context.ts';
import { KINDLING_VERSION } from './version.ts';

export interface RunningServer {
  url: string;
  app: FastifyInstance;
  context: ServerContext;
  /** Stops accepting requests, aborts generations, then frees the model. */
  close(): Promise<void>;
}

/** Extra protocols register here as they land (OpenAI, Anthropic, Ollama, WebSocket). */
export const PROTOCOL_ROUTES: RouteRegistrar[] = [registerOpenaiRoutes, registerAnthropicRoutes, registerOllamaRoutes];

/** The composition root: config → engine → scheduler → app → listen. */
export async function startServer(config: ServerConfig): Promise<RunningServer> {
  checkModelFile(config.modelPath);
  await assertCanListen(config.host, config.port);
  const engine = await LlamaEngine.load({
    modelPath: config.modelPath,
    contextSize: config.contextSize,
    slots: config.parallel,
    threads: config.threads,
    gpuLayers: config.gpuLayers,
    placeholder: config.placeholderModel,
  });
  const scheduler = new Scheduler(engine, {
    maxQueue: config.maxQueue,
    graceMs: config.streamGraceMs,
    maxGenerationMs: config.maxGenerationMs,
    maxQueueWaitMs: config.maxQueueWaitMs,
  });
  const context: ServerContext = {
    config,
    engine,
    scheduler,
    version: KINDLING_VERSION,
    jsonSchemaToGrammar: (schema) => engine.jsonSchemaToGrammar(schema),
  };
  const app = await createApp(context, PROTOCOL_ROUTES);
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    await app.close().catch(() => {});
    await engine.dispose();
    throw describeListenError(error, config.host, config.port) ?? error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  if (config.placeholderModel) {
    app.log.warn(
      'Serving an UNTRAINED PLACEHOLDER model (random weights): its text is noise. Pass --model <file.gguf> for a real model.',
    );
  }
  return {
    url: `http://${host}:${port}`,
    app,
    context,
    async close() {
      await scheduler.drain();
      await app.close();
      await engine.dispose();
    },
  };
}
