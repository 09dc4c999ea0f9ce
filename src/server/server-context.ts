import type { ServerConfig } from '../config/server-config.ts';
import type { Engine } from '../engine/engine.ts';
import type { Scheduler } from '../scheduler/scheduler.ts';
import type { KindlingMetrics } from './observability/kindling-metrics.ts';

/** What every route file receives: built once in main.ts. */
export interface ServerContext {
  config: ServerConfig;
  engine: Engine;
  scheduler: Scheduler;
  version: string;
  /** The `/metrics` registry, also the scheduler's observer; absent with `--no-metrics`. */
  metrics?: KindlingMetrics;
  /** Converts a JSON schema to GBNF (llama.cpp's converter through node-llama-cpp). */
  jsonSchemaToGrammar: (schema: unknown) => Promise<string>;
}
