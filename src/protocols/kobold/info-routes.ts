import { Answer } from '../../core/answer.ts';
import { PROTECTED_MODEL_NAME, servedModelId } from '../../core/model-info.ts';
import { infoRoute, type ProtocolRoute } from '../../core/protocol.ts';
import type { ProtocolServices } from '../../core/protocol-services.ts';
import { IGNORED_SAMPLERS } from '../common/sampler-table.ts';
import { koboldPerfStopReason } from './finish-reason.ts';

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

/** KoboldCpp's informational routes: open (no password), with nothing of the model or anyone's activity for an
 * anonymous caller of a protected server. */
export function koboldInfoRoutes(services: ProtocolServices): ProtocolRoute[] {
  const { model } = services;
  const displayName = () =>
    model.placeholder ? `${model.name} (untrained placeholder: random weights, text is noise)` : model.name;
  const open = (paths: string[], summary: string | undefined, handle: InfoHandle): ProtocolRoute =>
    infoRoute({ method: 'GET', paths, open: true, ...(summary ? { summary } : {}), handle });
  const both = (suffix: string) => ['/api/v1', '/api/latest'].map((prefix) => `${prefix}${suffix}`);
  return [
    open(both('/model'), 'Loaded model name', ({ anonymous }) => ({
      result: anonymous ? `koboldcpp/${PROTECTED_MODEL_NAME}` : servedModelId({ name: displayName() }),
    })),
    open(both('/info/version'), 'KoboldAI United API level', () => ({ result: '1.2.5' })),
    open(both('/config/max_length'), 'Largest max_length worth asking for', () => ({
      value: Math.min(1024, model.contextSize - 16),
    })),
    open(both('/config/max_context_length'), 'Context window', () => ({ value: model.contextSize })),
    open(both('/config/soft_prompt'), undefined, () => ({ value: '' })),
    open(both('/config/soft_prompts_list'), undefined, () => ({ values: [] })),
    open(['/api/extra/true_max_context_length'], 'Context window', () => ({ value: model.contextSize })),
    open(['/api/extra/version'], 'KoboldCpp-compatible version and capabilities', () => ({
      result: 'KoboldCpp',
      version: KOBOLDCPP_COMPAT_VERSION,
      protected: services.passwordProtected,
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
      kindling: services.version,
      placeholder_model: model.placeholder,
      resumable_streams: true,
      parallel_slots: services.activity().slotCount,
      ignored_samplers: IGNORED_SAMPLERS.map(([name]) => name),
    })),
    open(
      ['/api/extra/perf'],
      'Measured speeds, queue and slot use (zeros for an anonymous caller of a protected server)',
      ({ anonymous }) => {
        const perf = koboldPerf(services);
        return anonymous ? { ...perf, ...NEUTRAL_ACTIVITY } : perf;
      },
    ),
    open(['/api/extra/preloadstory'], 'Story JSON preloaded with --preloadstory, or {}', async () => {
      const story = await services.preloadStory();
      return story === undefined ? {} : Answer.text(story, 'application/json');
    }),
  ];
}

type InfoHandle = (input: { anonymous: boolean }) => unknown;

/** `/api/extra/perf`: KoboldCpp's fields from the measured figures, then ours (slots, batches, reuse). */
function koboldPerf(services: ProtocolServices): Record<string, unknown> {
  const { stats: s, counters, queueLength, busySlots, slotCount, threadPools } = services.activity();
  const perToken = (ms: number, n: number) => (n > 0 ? ms / n : 0);
  const busy = busySlots > 0 || queueLength > 0;
  return {
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
    queue: queueLength,
    idle: busy ? 0 : 1,
    hordeexitcounter: 0,
    uptime: s.uptimeSeconds,
    idletime: busy ? 0 : (Date.now() - s.lastFinishedAt) / 1000,
    quiet: services.quiet,
    slots: slotCount,
    slots_busy: busySlots,
    prompt_tokens_evaluated: counters.promptTokensEvaluated,
    prompt_tokens_reused: counters.promptTokensReused,
    tokens_generated: counters.tokensGenerated,
    decode_batches: counters.decodeBatches,
    batched_sequences: counters.batchedSequences,
    thread_pools: threadPools,
  };
}
