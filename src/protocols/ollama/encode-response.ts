import type { StreamPart } from '../../core/stream-part.ts';
import { ollamaDoneReason } from './done-reason.ts';
import type { OllamaResponseMeta } from './wire.ts';

type Finish = Extract<StreamPart, { type: 'finish' }>;

const ns = (ms: number) => Math.round(ms * 1e6);

/** The final object's counters, in Ollama's units (durations in nanoseconds; the model is always loaded). */
export function ollamaFinalFields(meta: OllamaResponseMeta, finish: Finish): Record<string, unknown> {
  const { usage, timings } = finish;
  return {
    done: true,
    done_reason: ollamaDoneReason(finish.reason),
    ...(meta.kind === 'generate' && meta.context ? { context: meta.context() } : {}),
    total_duration: ns(timings.queuedMs + timings.promptMs + timings.generationMs),
    load_duration: 0,
    prompt_eval_count: usage.promptTokens,
    prompt_eval_duration: ns(timings.promptMs),
    eval_count: usage.completionTokens,
    eval_duration: ns(timings.generationMs),
  };
}

/** The text field of a line: `response` for generate, `message` for chat. */
export function ollamaText(meta: OllamaResponseMeta, text: string): Record<string, unknown> {
  return meta.kind === 'generate' ? { response: text } : { message: { role: 'assistant', content: text } };
}

/** A non-streamed response: the whole text and the final counters in one object. */
export function encodeOllamaResponse(meta: OllamaResponseMeta, text: string, finish: Finish): Record<string, unknown> {
  return {
    model: meta.model,
    created_at: new Date().toISOString(),
    ...ollamaText(meta, text),
    ...ollamaFinalFields(meta, finish),
  };
}

/** What Ollama answers when there is nothing to generate (empty prompt or no messages): it just loads the model. */
export function encodeOllamaLoaded(meta: OllamaResponseMeta): Record<string, unknown> {
  return {
    model: meta.model,
    created_at: new Date().toISOString(),
    ...ollamaText(meta, ''),
    done: true,
    done_reason: 'load',
  };
}
