import type { ServerConfig } from '../config/server-config.ts';
import type { Engine } from '../engine/engine.ts';
import type { RedisLink } from '../fleet/redis-link.ts';
import type { Scheduler } from '../scheduler/scheduler.ts';
import { AccessControl } from './access/access-control.ts';
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
  /**
   * API keys, quotas and each request's QoS. main.ts builds it before the model loads, so a bad key file stops
   * the start at once; a context built without one (tests) gets one from its config on first use.
   */
  access?: AccessControl;
  /** The fleet's Redis (`--redis`); absent on a single node, where nothing leaves the process. */
  redis?: RedisLink;
}

/** The context's access control, built from its config if it came without one. */
export function accessOf(context: ServerContext): AccessControl {
  context.access ??= new AccessControl(context.config);
  return context.access;
}
