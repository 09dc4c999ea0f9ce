import type { GenerationRequest } from '../../core/generation-request.ts';
import { KindlingError } from '../../core/kindling-error.ts';
import type { EngineJob } from '../engine.ts';
import type { UpstreamFlavor } from './upstream-probe.ts';

type Json = Record<string, unknown>;

/** What each kind of upstream honours beyond OpenAI's own fields (temperature, top_p, seed, penalties, logit_bias). */
const HONOURS: Record<UpstreamFlavor, { grammar: boolean; dry: boolean; xtc: boolean; phraseBans: boolean }> = {
  kindling: { grammar: true, dry: true, xtc: true, phraseBans: true },
  'llama.cpp': { grammar: true, dry: true, xtc: true, phraseBans: false },
  vllm: { grammar: true, dry: false, xtc: false, phraseBans: false },
  openai: { grammar: false, dry: false, xtc: false, phraseBans: false },
};

const NAMES: Record<UpstreamFlavor, string> = {
  kindling: 'a Kindling/KoboldCpp upstream',
  'llama.cpp': 'a llama-server upstream',
  vllm: 'a vLLM upstream',
  openai: 'this upstream (it is not known to take the field)',
};

/**
 * The request's settings an upstream of this kind would silently drop are a 400 before the request is queued:
 * a grammar nobody enforces, or a banned phrase that still appears, is worse than a clear refusal.
 */
export function checkUpstreamRequest(
  flavor: UpstreamFlavor,
  request: GenerationRequest,
  eos: number | undefined,
): void {
  const honours = HONOURS[flavor];
  const refuse = (field: string, what: string) =>
    new KindlingError('not_supported', `${field}: ${what} is not available through ${NAMES[flavor]}.`, { field });
  const { sampling } = request;
  if (request.logprobs > 0) throw refuse('logprobs', 'log probabilities');
  if (sampling.grammar && !honours.grammar) throw refuse('grammar', 'a grammar (or JSON schema)');
  if (sampling.dry && !honours.dry) throw refuse('dry_multiplier', 'the DRY sampler');
  if (sampling.xtc && !honours.xtc) throw refuse('xtc_probability', 'the XTC sampler');
  if (sampling.bannedStrings.length > 0 && !honours.phraseBans) throw refuse('banned_tokens', 'phrase bans');
  // The upstream ends its stream at EOS: there is nothing to bypass it with.
  if (request.bypassEos) throw refuse('bypass_eos', 'generating past the end-of-stream token');
  if (request.banEos && flavor === 'openai' && eos === undefined)
    throw refuse('ban_eos_token', 'banning the end-of-stream token (its id is unknown)');
}

/** `Infinity` and larger windows as the upstream's "whole context" (-1). */
const window = (n: number, context: number) => (n >= context || !Number.isFinite(n) ? -1 : n);

/**
 * The `/v1/completions` body for a job: OpenAI's fields, then each kind's own names for the samplers it has.
 * Stop strings are not sent: Kindling holds back and cuts them itself (so it can report which one matched).
 */
export function completionBody(
  flavor: UpstreamFlavor,
  model: string,
  job: EngineJob,
  context: { size: number; eos: number | undefined },
): Json {
  const s = job.sampling;
  const prompt: string | readonly number[] = job.promptText ?? job.promptTokens;
  const logitBias: Record<string, number> = {};
  for (const [id, bias] of s.logitBias) logitBias[String(id)] = Math.max(-100, Math.min(100, bias));
  for (const id of s.bannedTokenIds ?? []) logitBias[String(id)] = -100;
  const ignoreEos = job.banEos;
  const body: Json = {
    model,
    prompt,
    max_tokens: job.maxTokens,
    temperature: Math.max(0, s.temperature),
    top_p: s.topP,
    seed: job.seed,
    presence_penalty: s.presencePenalty,
    frequency_penalty: s.frequencyPenalty,
    stream: true,
    stream_options: { include_usage: true },
  };
  if (flavor === 'vllm') {
    Object.assign(body, { top_k: s.topK > 0 ? s.topK : -1, min_p: s.minP, repetition_penalty: s.repeatPenalty });
    if (ignoreEos) body.ignore_eos = true;
    if (s.grammar) body.guided_grammar = s.grammar;
    // Token ids of the answer, where vLLM has them (0.10.2 on): the log's text parts carry them.
    body.return_token_ids = true;
  } else {
    Object.assign(body, {
      top_k: s.topK,
      min_p: s.minP,
      repeat_penalty: s.repeatPenalty,
      repeat_last_n: window(s.repeatPenaltyRange, context.size),
    });
    if (s.grammar) body.grammar = s.grammar;
    if (s.dry)
      Object.assign(body, {
        dry_multiplier: s.dry.multiplier,
        dry_base: s.dry.base,
        dry_allowed_length: s.dry.allowedLength,
        dry_penalty_last_n: window(s.dry.penaltyLastN, context.size),
        dry_sequence_breakers: s.dry.sequenceBreakers,
      });
    if (s.xtc) Object.assign(body, { xtc_probability: s.xtc.probability, xtc_threshold: s.xtc.threshold });
    if (flavor !== 'openai') {
      if (ignoreEos) body.ignore_eos = true;
    } else if (ignoreEos && context.eos !== undefined) logitBias[String(context.eos)] = -100;
    if (flavor === 'llama.cpp') body.cache_prompt = true;
    if (flavor === 'kindling' && s.bannedStrings.length > 0) body.banned_tokens = s.bannedStrings;
  }
  if (Object.keys(logitBias).length > 0) body.logit_bias = logitBias;
  return body;
}
