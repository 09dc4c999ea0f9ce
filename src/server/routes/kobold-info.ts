import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import { servedModelId } from '../../core/model-info.ts';
import { IGNORED_SAMPLERS } from '../../protocols/common/sampler-table.ts';
import { koboldPerfStopReason } from '../../protocols/kobold/finish-reason.ts';
import { isAnonymous } from '../auth.ts';
import type { ServerContext } from '../server-context.ts';

/** What `/api/v1/model` (and every other open route) says instead of the model name to an anonymous caller. */
export const PROTECTED_MODEL_NAME = 'protected-model';

/**
 * `/api/extra/perf`'s activity fields as an idle server that never generated shows them: what an anonymous
 * caller of a password-protected server gets, so nothing of another user's requests (seeds, token counts,
 * timings, queue, when the server was last busy) leaks through the open route.
 */
const NEUTRAL_ACTIVITY = {
  last_process: 0,
  last_eval: 0,
  last_token_count: 0,
  last_input_count: 0,
  last_process_time: 0,
  last_eval_time: 0,
  last_process_speed: 0,
  last_eval_speed: 0,
  last_seed: 0,
  total_gens: 0,
  stop_reason: -1,
  queue: 0,
  idle: 1,
  idletime: 0,
  slots_busy: 0,
  prompt_tokens_evaluated: 0,
  prompt_tokens_reused: 0,
  tokens_generated: 0,
  decode_batches: 0,
  batched_sequences: 0,
  thread_pools: 0,
};

/**
 * The KoboldCpp version we report. KoboldAI Lite enables features by comparing it numerically: 1.76
 * turns on SSE streaming, abort, min_p, DRY, XTC, grammar, memory and trim_stop (all of which we
 * implement) without claiming later features such as multiplayer, TTS or server-side saves.
 */
export const KOBOLDCPP_COMPAT_VERSION = '1.76';
const tags = ['KoboldAI'];

export function registerKoboldInfoRoutes(app: FastifyInstance, context: ServerContext): void {
  const { config, engine, scheduler } = context;
  const model = engine.model;
  const displayName = () =>
    model.placeholder ? `${model.name} (untrained placeholder: random weights, text is noise)` : model.name;

  for (const prefix of ['/api/v1', '/api/latest']) {
    app.get(
      `${prefix}/model`,
      { schema: { tags, summary: 'Loaded model name' }, config: { auth: false } },
      async (request) => ({
        result: isAnonymous(request, config.password)
          ? `koboldcpp/${PROTECTED_MODEL_NAME}`
          : servedModelId({ name: displayName() }),
      }),
    );
    app.get(
      `${prefix}/info/version`,
      { schema: { tags, summary: 'KoboldAI United API level' }, config: { auth: false } },
      async () => ({ result: '1.2.5' }),
    );
    app.get(
      `${prefix}/config/max_length`,
      { schema: { tags, summary: 'Largest max_length worth asking for' }, config: { auth: false } },
      async () => ({
        value: Math.min(1024, model.contextSize - 16),
      }),
    );
    app.get(
      `${prefix}/config/max_context_length`,
      { schema: { tags, summary: 'Context window' }, config: { auth: false } },
      async () => ({
        value: model.contextSize,
      }),
    );
    app.get(`${prefix}/config/soft_prompt`, { schema: { tags }, config: { auth: false } }, async () => ({ value: '' }));
    app.get(`${prefix}/config/soft_prompts_list`, { schema: { tags }, config: { auth: false } }, async () => ({
      values: [],
    }));
  }

  app.get(
    '/api/extra/true_max_context_length',
    { schema: { tags, summary: 'Context window' }, config: { auth: false } },
    async () => ({ value: model.contextSize }),
  );

  app.get(
    '/api/extra/version',
    { schema: { tags, summary: 'KoboldCpp-compatible version and capabilities' }, config: { auth: false } },
    async () => ({
      result: 'KoboldCpp',
      version: KOBOLDCPP_COMPAT_VERSION,
      protected: Boolean(config.password),
      llm: true,
      txt2img: false,
      vision: false,
      transcribe: false,
      multiplayer: false,
      websearch: false,
      tts: false,
      embeddings: model.canEmbed,
      savedata: false,
      jinja: false,
      kindling: context.version,
      placeholder_model: model.placeholder,
      resumable_streams: true,
      parallel_slots: scheduler.slotCount,
      ignored_samplers: IGNORED_SAMPLERS.map(([name]) => name),
    }),
  );

  app.get(
    '/api/extra/perf',
    {
      schema: {
        tags,
        summary: 'Measured speeds, queue and slot use (zeros for an anonymous caller of a protected server)',
      },
      config: { auth: false },
    },
    async (request) => {
      const s = scheduler.stats;
      const perToken = (ms: number, n: number) => (n > 0 ? ms / n : 0);
      const busy = scheduler.busySlots > 0 || scheduler.queueLength > 0;
      const perf = {
        last_process: perToken(s.lastPromptMs, s.lastEvaluatedPromptTokens),
        last_eval: perToken(s.lastGenerationMs, Math.max(0, s.lastGeneratedTokens - 1)),
        last_token_count: s.lastGeneratedTokens,
        last_input_count: s.lastPromptTokens,
        last_process_time: s.lastPromptMs / 1000,
        last_eval_time: s.lastGenerationMs / 1000,
        last_process_speed: s.lastPromptMs > 0 ? (s.lastEvaluatedPromptTokens * 1000) / s.lastPromptMs : 0,
        last_eval_speed: s.lastGenerationMs > 0 ? ((s.lastGeneratedTokens - 1) * 1000) / s.lastGenerationMs : 0,
        last_seed: s.lastSeed,
        total_gens: s.totalGenerations,
        stop_reason: koboldPerfStopReason(s.lastStopReason),
        total_img_gens: 0,
        queue: scheduler.queueLength,
        idle: busy ? 0 : 1,
        hordeexitcounter: 0,
        uptime: s.uptimeSeconds,
        idletime: busy ? 0 : (Date.now() - s.lastFinishedAt) / 1000,
        quiet: config.logLevel === 'silent',
        slots: scheduler.slotCount,
        slots_busy: scheduler.busySlots,
        prompt_tokens_evaluated: engine.counters.promptTokensEvaluated,
        prompt_tokens_reused: engine.counters.promptTokensReused,
        tokens_generated: engine.counters.tokensGenerated,
        decode_batches: engine.counters.decodeBatches,
        batched_sequences: engine.counters.batchedSequences,
        thread_pools: engine.threadPools?.() ?? 0,
      };
      return isAnonymous(request, config.password) ? { ...perf, ...NEUTRAL_ACTIVITY } : perf;
    },
  );

  app.get(
    '/api/extra/preloadstory',
    { schema: { tags, summary: 'Story JSON preloaded with --preloadstory, or {}' }, config: { auth: false } },
    async (_request, reply) => {
      if (!config.preloadStoryPath) return {};
      const story = await readFile(config.preloadStoryPath, 'utf8');
      return reply.type('application/json').send(story);
    },
  );
}
