import type { ServerConfig } from '../config/server-config.ts';
import type { Engine } from '../engine/engine.ts';
import type { Scheduler } from '../scheduler/scheduler.ts';

/** What every route file receives: built once in main.ts. */
export interface ServerContext {
  config: ServerConfig;
  engine: Engine;
  scheduler: Scheduler;
  version: string;
  /** Converts a JSON schema to GBNF (llama.cpp's converter through node-llama-cpp). */
  jsonSchemaToGrammar: (schema: unknown) => Promise<string>;
}
