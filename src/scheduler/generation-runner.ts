import { KindlingError } from '../core/kindling-error.ts';
import type { StopReason } from '../core/stop-reason.ts';
import type { StreamPart, TokenLogprob } from '../core/stream-part.ts';
import type { Engine, EngineEvent, EngineRewind } from '../engine/engine.ts';
import { type PipelineStep, TextPipeline } from '../stream/text-pipeline.ts';
import type { Generation } from './generation.ts';
import type { SchedulerObserver } from './scheduler-observer.ts';

export interface RunFigures {
  promptTokens: number;
  evaluatedPromptTokens: number;
  generatedTokens: number;
  promptMs: number;
  generationMs: number;
  reason: StopReason;
}

/**
 * Drives one generation in one slot: engine tokens → UTF-8-safe text → stop-string holdback → log parts.
 * Decides every stop condition (EOS, stop token, stop string, length, context, abort) in one place.
 * The final part is returned, not emitted: the scheduler frees the slot first, so a client that sees
 * the end of its generation always finds the slot free.
 */
export async function runGeneration(
  engine: Engine,
  generation: Generation,
  slot: number,
  observer?: SchedulerObserver,
): Promise<{ figures: RunFigures; final: StreamPart }> {
  const request = generation.request;
  const started = performance.now();
  generation.emit({ type: 'start', promptTokens: generation.promptTokens.length, seed: generation.seed });
  // Phrase bans take tokens back; a grammar's state cannot follow that, so with a grammar they stay token bans.
  const rewindable = request.sampling.bannedStrings.length > 0 && !request.sampling.grammar;
  const pipeline = new TextPipeline({
    detokenize: (tokens, context) => engine.detokenize(tokens, { special: request.renderSpecial, context }),
    promptTokens: generation.promptTokens,
    stopStrings: request.stopStrings,
    trimStop: request.trimStop,
    bannedPhrases: rewindable ? request.sampling.bannedStrings : [],
  });
  // Over an upstream the stream is text: a stop string is matched in the text (its special tokens are not known).
  const stopTokens = engine.remoteTokenizer ? new Set<number>() : singleTokenStops(engine, request.stopStrings);
  /** The engine's backend's own count (an upstream's `usage`), when it reports one. */
  let usage: Extract<EngineEvent, { type: 'usage' }> | undefined;
  let promptMs = 0;
  let firstTokenAt = 0;
  /** For the observer's token gaps only (0: no token yet). */
  let lastTokenAt = 0;
  let generated = 0;
  let evaluated = 0;
  let reused = 0;
  // The budget was capped once, when the prompt was tokenized (prompt-tokens.ts): the prompt and this many tokens
  // fit the context. Reaching a budget that the cap cut short means the context is full, not that max_length was.
  const limit = generation.maxTokens;
  const limitReason: StopReason = limit < request.maxTokens ? 'context-full' : 'max-tokens';
  let reason: StopReason = limitReason;
  let stopString: string | undefined;
  let failure: KindlingError | undefined;

  /** Emits a step's text; returns the stop string it hit, if any. */
  const emit = (step: PipelineStep): string | undefined => {
    for (const out of step.emit) {
      generation.emit({
        type: 'text-delta',
        text: out.text,
        tokens: out.tokens,
        ...(out.logprobs ? { logprobs: out.logprobs } : {}),
      });
    }
    return step.stop?.stop;
  };

  if (limit <= 0) {
    reason = limitReason;
  } else {
    const promptText = generation.promptText;
    generation.promptText = undefined;
    const events = engine.run(
      slot,
      {
        promptTokens: generation.promptTokens,
        ...(promptText !== undefined ? { promptText } : {}),
        sampling: request.sampling,
        seed: generation.seed,
        banEos: request.banEos,
        yieldEog: true,
        logprobs: request.logprobs,
        maxTokens: limit,
        rewindable,
      },
      generation.signal,
    );
    let rewind: EngineRewind | undefined;
    try {
      for (;;) {
        const next = await events.next(rewind);
        rewind = undefined;
        if (next.done) break;
        const event = next.value;
        if (event.type === 'prompt-evaluated') {
          evaluated = event.evaluated;
          reused = event.reused;
          continue;
        }
        if (event.type === 'usage') {
          usage = event;
          if (event.cachedPromptTokens !== undefined) {
            reused = event.cachedPromptTokens;
            evaluated = Math.max(0, event.promptTokens - reused);
          }
          continue;
        }
        if (generated === 0) {
          firstTokenAt = performance.now();
          promptMs = firstTokenAt - started;
        }
        if (observer) {
          const now = performance.now();
          if (lastTokenAt === 0) observer.firstToken(generation, (Date.now() - generation.createdAt) / 1000);
          else observer.tokenGap((now - lastTokenAt) / 1000);
          lastTokenAt = now;
        }
        generated++;
        const isStopToken = stopTokens.has(event.token);
        if ((event.eog && !request.bypassEos) || isStopToken) {
          reason = isStopToken && !event.eog ? 'stop-token' : 'eos';
          if (request.renderSpecial && !isStopToken && event.text === undefined) emit(pipeline.push(event.token));
          break;
        }
        // An engine that streams text (an upstream) hands it over; a local one's tokens are detokenized here.
        const step =
          event.text === undefined
            ? pipeline.push(event.token, logprobOf(engine, event))
            : pipeline.pushText(event.text, event.tokens ?? []);
        if (step.rewind) {
          generated -= step.rewind.count;
          rewind = { rewind: step.rewind.count, ban: step.rewind.ban };
          continue;
        }
        stopString = emit(step);
        if (stopString !== undefined) {
          reason = 'stop-string';
          break;
        }
        if (generated >= limit) {
          reason = limitReason;
          break;
        }
      }
      if (generation.signal.aborted) reason = 'abort';
    } catch (error) {
      failure =
        error instanceof KindlingError
          ? error
          : // The engine's own error stays attached as the cause, so the log line of the request shows its stack.
            Object.assign(
              new KindlingError(
                'model_error',
                `Generation failed in the engine: ${error instanceof Error ? error.message : String(error)}`,
              ),
              { cause: error },
            );
      reason = 'error';
    } finally {
      await events.return(undefined);
    }
  }
  if (stopString === undefined && reason !== 'error') {
    stopString = emit(pipeline.flush());
    if (stopString !== undefined) reason = 'stop-string';
  }
  const generationMs = firstTokenAt ? performance.now() - firstTokenAt : 0;
  const figures = {
    promptTokens: generation.promptTokens.length,
    evaluatedPromptTokens: evaluated,
    generatedTokens: generated,
    promptMs,
    generationMs,
    reason,
  };
  if (failure) return { figures, final: { type: 'error', error: failure } };
  return {
    figures,
    final: {
      type: 'finish',
      reason,
      ...(stopString !== undefined ? { stopString } : {}),
      usage: {
        promptTokens: usage?.promptTokens ?? generation.promptTokens.length,
        cachedPromptTokens: reused,
        completionTokens: usage?.completionTokens ?? generated,
        truncatedPromptTokens: generation.truncatedTokens,
      },
      timings: {
        queuedMs: (generation.startedAt ?? generation.createdAt) - generation.createdAt,
        promptMs,
        generationMs,
      },
    },
  };
}

/** Stop strings that are exactly one special token (e.g. `<|im_end|>`) are matched by id, like KoboldCpp. */
function singleTokenStops(engine: Engine, stops: readonly string[]): Set<number> {
  const ids = new Set<number>();
  for (const stop of stops) {
    const tokens = engine.tokenize(stop, { special: true, addBos: false });
    if (tokens.length === 1 && engine.detokenize(tokens, { special: false }) === '') ids.add(tokens[0] as number);
  }
  return ids;
}

function logprobOf(engine: Engine, event: Extract<EngineEvent, { type: 'token' }>): TokenLogprob | undefined {
  if (event.logprob === undefined) return undefined;
  const text = (id: number) => engine.detokenize([id], { special: true });
  return {
    token: text(event.token),
    tokenId: event.token,
    logprob: event.logprob,
    top: (event.top ?? []).map((t) => ({ token: text(t.tokenId), tokenId: t.tokenId, logprob: t.logprob })),
  };
}
