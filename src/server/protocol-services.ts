import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { KindlingError } from '../core/kindling-error.ts';
import { servedModelId } from '../core/model-info.ts';
import type { GenerationDirectory, ProtocolServices } from '../core/protocol-services.ts';
import { tokenizeSliced } from '../engine/token-cuts.ts';
import { FleetLog } from '../fleet/fleet-log.ts';
import type { Scheduler } from '../scheduler/scheduler.ts';
import { lookupLimiter } from './lookup-rate-limit.ts';
import { fleetModelsOf } from './routes/fleet-node.ts';
import { accessOf, type ServerContext } from './server-context.ts';

/** What the protocols may use of this server, built once per app from its engine, scheduler and config. */
export function protocolServices(context: ServerContext): ProtocolServices {
  const { engine, scheduler, config } = context;
  const model = engine.model;
  const remote = engine.remoteTokenizer;
  const detokenize = (ids: readonly number[], options: { special: boolean; context?: readonly number[] }) =>
    remote ? remote.detokenize(ids, options) : Promise.resolve(engine.detokenize(ids, options));
  return {
    model,
    version: context.version,
    defaultMaxLength: config.defaultMaxLength,
    passwordProtected: accessOf(context).required,
    quiet: config.logLevel === 'silent',
    bosToken: engine.bosToken,
    generations: generationDirectory(scheduler, FleetLog.of(context.redis)),
    ...(context.redis ? { fleetModels: () => fleetModelsOf(context) } : {}),
    remoteTokens: remote !== undefined,
    tokenize: (text, options) => engine.tokenize(text, options),
    async countTokens(text, options, signal) {
      try {
        if (remote) {
          const tokens = await remote.tokenize(text, options, signal);
          return { chunks: [tokens], count: tokens.length };
        }
        return await tokenizeSliced(engine, text, options, signal);
      } catch (error) {
        if (signal.aborted) throw new KindlingError('bad_input', 'The client closed the request.');
        throw error;
      }
    },
    detokenize: (tokens, options) => detokenize(tokens, options),
    promptTextOfIds(ids) {
      // Twice the context: the text is tokenized again and may come out in fewer tokens. The ids before the cut
      // are its context, so the first character and its leading space come out right; a body of millions of ids
      // then costs what its last few thousand cost.
      const keep = 2 * model.contextSize;
      if (ids.length <= keep) return detokenize(ids, { special: true });
      const cut = ids.length - keep;
      return detokenize(ids.slice(cut), { special: true, context: ids.slice(Math.max(0, cut - 8), cut) });
    },
    ...(engine.formatChat ? { formatChat: (messages) => engine.formatChat?.(messages) } : {}),
    async embed(text) {
      const run = engine.embed?.bind(engine);
      if (!model.canEmbed || !run)
        throw new KindlingError(
          'not_supported',
          `The loaded model '${servedModelId(model)}' does not provide embeddings on this server.`,
          { field: 'model' },
        );
      return run(text);
    },
    jsonSchemaToGrammar: (schema) => context.jsonSchemaToGrammar(schema),
    activity: () => ({
      stats: scheduler.stats,
      counters: engine.counters,
      queueLength: scheduler.queueLength,
      busySlots: scheduler.busySlots,
      slotCount: scheduler.slotCount,
      threadPools: engine.threadPools?.() ?? 0,
    }),
    modelModifiedAt() {
      try {
        return statSync(model.path).mtime;
      } catch {
        return new Date(0);
      }
    },
    preloadStory: async () => (config.preloadStoryPath ? readFile(config.preloadStoryPath, 'utf8') : undefined),
  };
}

/**
 * Keys are looked up only among the principal's own generations (or by server id). A key that finds nothing
 * spends a token of the principal's lookup rate limit (lookup-rate-limit.ts); known keys cost nothing.
 */
export function generationDirectory(scheduler: Scheduler, fleet?: FleetLog): GenerationDirectory {
  const local: GenerationDirectory = {
    lookup(principal, key) {
      const generation = key === undefined ? scheduler.lastOf(principal) : scheduler.find(principal, key);
      if (!generation) {
        if (key !== undefined) lookupLimiter(scheduler).miss(principal);
        return undefined;
      }
      return { generation, queuePosition: scheduler.positionOf(generation), touch: () => generation.touch() };
    },
    abort(principal, key) {
      if (key !== undefined && !scheduler.find(principal, key)) lookupLimiter(scheduler).miss(principal);
      return scheduler.abort(principal, key);
    },
  };
  if (!fleet) return local;
  // The local registry first; Redis only on a miss, and a key unknown to the whole fleet spends the budget once.
  return {
    ...local,
    async lookupAnywhere(principal, key) {
      if (key === undefined || scheduler.find(principal, key)) return local.lookup(principal, key);
      const remote = await fleet.find(principal, key);
      if (!remote) lookupLimiter(scheduler).miss(principal);
      return remote && { generation: remote, queuePosition: remote.queuePosition, touch: () => remote.touch() };
    },
    async abortAnywhere(principal, key) {
      if (key === undefined || scheduler.find(principal, key)) return local.abort(principal, key);
      if (await fleet.abort(principal, key)) return true;
      lookupLimiter(scheduler).miss(principal);
      return false;
    },
  };
}
