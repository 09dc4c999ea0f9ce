import { batch } from '@preact/signals';
import {
  AbortedError,
  type GenerationResult,
  HttpStatusError,
  KoboldClient,
  type TextClient,
  type TextRequest,
} from '../../../src/client/index.ts';
import { friendlyError } from '../api/friendly-error.ts';
import { providers } from '../api/providers.ts';
import { type ActionKind, newId, type Turn } from '../model/session.ts';
import { buildPrompt, type TokenCounter } from '../prompt/build-prompt.ts';
import { planLengths } from '../prompt/context-lengths.ts';
import { chatSpeakers } from '../prompt/group-chat.ts';
import { addUserTurn, commitReply, dropLastReply } from './actions.ts';
import { clearDraft, saveDraft } from './autosave.ts';
import { connect, connectionConfig, connectionSettled, connectionState, currentClient } from './connection.ts';
import { LiveText } from './live-text.ts';
import { composerText, generation, lastRequest, notice, panelTab, session, stats } from './store.ts';
import { findStop, toTextRequest } from './text-request.ts';

// One generation at a time, each a Run with its own AbortController. A run that was stopped or failed is marked
// finished and every later event of it is dropped, so a late token can never land in the next reply (a Lite race).

interface Run {
  controller: AbortController;
  /** `previous`: the reply Retry replaced; the new one becomes its next variant, or it comes back if nothing came. */
  target: { turnId: string; continues: boolean; merge: boolean; previous?: Turn | undefined; impersonate?: boolean };
  sessionId: string;
  chunks: number;
  finished: boolean;
  /** Stream events as received, for the "last request" inspector (capped; set on the store once, at the end). */
  events: string[];
  /** Group chat: the character this reply is written as (stored on the turn). */
  speaker?: string;
  /** Chat and instruct replies start after "Name:" or a tag; the model's leading space/newline is not content. */
  trim: boolean;
}

let active: Run | undefined;

export const liveText = new LiveText(() => {
  const run = active;
  const current = stats.value;
  if (run === undefined || current === undefined) return;
  const now = performance.now();
  const firstAt = current.firstTokenMs === undefined ? undefined : current.startedAt + current.firstTokenMs;
  const genSeconds = firstAt === undefined ? 0 : (now - firstAt) / 1000;
  stats.value = {
    ...current,
    elapsedMs: now - current.startedAt,
    tokens: run.chunks,
    tokensPerSecond: genSeconds > 0.2 ? run.chunks / genSeconds : undefined,
  };
  if (!run.target.impersonate)
    saveDraft(run.sessionId, { turnId: run.target.turnId, text: liveText.text, continues: run.target.continues });
});

async function ensureClient(): Promise<TextClient | undefined> {
  // Generate pressed while the automatic connect is still running: wait for it rather than fail.
  await connectionSettled();
  if (currentClient() === undefined) await connect();
  const client = currentClient();
  if (client === undefined) {
    notice.value = {
      kind: 'error',
      text: connectionState.value.error ?? 'Not connected. Open Connect and connect to a provider.',
    };
  }
  return client;
}

/** Generate from the prompt box. Empty input continues: the story, or the last reply in chat/instruct mode. */
export async function generate(input: string, action?: ActionKind): Promise<void> {
  if (active !== undefined) return;
  if (input.trim().length > 0) addUserTurn(input, session.value.mode === 'adventure' ? (action ?? 'do') : undefined);
  const s = session.value;
  const last = s.turns.at(-1);
  // In a group chat an empty Generate lets the next character speak instead of extending the last one.
  const group = s.mode === 'chat' && chatSpeakers(s).length > 1;
  const continues =
    input.trim().length === 0 && !group && (s.mode === 'chat' || s.mode === 'instruct') && last?.role === 'assistant';
  await start({ turnId: continues ? last.id : newId(), continues, merge: false });
}

/** Generate the last reply again; one Undo brings the previous reply back. */
export async function retry(): Promise<void> {
  if (active !== undefined) return;
  const previous = dropLastReply();
  if (previous === undefined && session.value.turns.at(-1)?.role !== 'user') return;
  await start({ turnId: previous?.id ?? newId(), continues: false, merge: previous !== undefined, previous });
}

/** Writes the user's next message (chat and instruct modes) into the input box, for them to edit and send. */
export async function impersonate(): Promise<void> {
  if (active !== undefined) return;
  const mode = session.value.mode;
  if (mode !== 'chat' && mode !== 'instruct') return;
  await start({ turnId: newId(), continues: false, merge: false, impersonate: true });
}

export function stop(): void {
  const run = active;
  if (run === undefined) return;
  // The SDK's abort also tells a Kobold server to stop (POST /api/extra/abort with the genkey), for a stream, a
  // polled stream and a plain generate alike.
  run.controller.abort();
  finish(run, { text: liveText.text, stopReason: 'abort' });
}

const maxLoggedEvents = 2000;

function log(run: Run, line: string): void {
  if (run.events.length < maxLoggedEvents)
    run.events.push(`${Math.round(performance.now() - (stats.value?.startedAt ?? 0))} ms ${line}`);
}

function finish(run: Run, result: GenerationResult, error?: string): void {
  if (run.finished) return;
  run.finished = true;
  if (error !== undefined) log(run, `error ${error}`);
  if (lastRequest.value !== undefined) lastRequest.value = { ...lastRequest.value, events: run.events };
  const text = run.trim ? result.text.trim() : result.text;
  batch(() => {
    const previous = run.target.previous;
    if (run.target.impersonate) {
      if (text.length > 0) composerText.value = text;
    } else if (text.length === 0 && previous !== undefined) {
      // Retry produced nothing (stopped at once, or failed): the reply it replaced comes back.
      if (session.value.id === run.sessionId) commitReply(previous, { continues: false, merge: true });
    } else if (text.length > 0 || (error !== undefined && !run.target.continues)) {
      const reply: Turn = { id: run.target.turnId, role: 'assistant', text, stopReason: result.stopReason };
      if (error !== undefined) reply.error = error;
      if (run.speaker !== undefined) reply.name = run.speaker;
      if (previous !== undefined) {
        reply.variants = [...(previous.variants ?? [previous.text]), text];
        reply.variantIndex = reply.variants.length - 1;
        if (previous.name !== undefined) reply.name = previous.name;
      }
      if (session.value.id === run.sessionId)
        commitReply(reply, { continues: run.target.continues, merge: run.target.merge });
    }
    if (error !== undefined) notice.value = { kind: 'error', text: error };
    const current = stats.value;
    if (current !== undefined) {
      const completion = result.usage?.completionTokens;
      stats.value = {
        ...current,
        elapsedMs: performance.now() - current.startedAt,
        tokens: completion ?? run.chunks,
        promptTokens: result.usage?.promptTokens ?? current.promptTokens,
        stopReason: result.stopReason,
      };
    }
    generation.value = { phase: 'idle' };
    active = undefined;
  });
  void clearDraft(run.sessionId);
}

async function start(target: Run['target']): Promise<void> {
  const s = session.value;
  const run: Run = {
    controller: new AbortController(),
    target,
    sessionId: s.id,
    chunks: 0,
    events: [],
    finished: false,
    trim: !target.continues && (s.mode === 'chat' || s.mode === 'instruct'),
  };
  active = run;
  // Stop is shown from this moment, before the prompt is even built.
  batch(() => {
    generation.value = { phase: 'sending', targetId: target.turnId, role: target.impersonate ? 'user' : 'assistant' };
    stats.value = { startedAt: performance.now(), elapsedMs: 0, tokens: 0 };
    notice.value = undefined;
  });
  liveText.reset();
  const client = await ensureClient();
  if (client === undefined || run.finished) {
    finish(run, { text: '', stopReason: 'abort' });
    return;
  }
  const config = connectionConfig.value;
  const def = providers[config.provider];
  let counter: TokenCounter | undefined;
  if (client.countTokens !== undefined) {
    const count = client.countTokens.bind(client);
    counter = (text) => count(text, { signal: run.controller.signal });
  }
  let request: TextRequest;
  try {
    // Budget for the server's real context, and keep the prompt at least half of it (context-lengths.ts).
    const lengths = planLengths(s.gen, connectionState.value.info?.contextSize);
    const effective =
      lengths.notes.length > 0
        ? { ...s, gen: { ...s.gen, maxContextLength: lengths.maxContextLength, maxLength: lengths.maxLength } }
        : s;
    const options = {
      continueLast: target.continues,
      speaker: target.impersonate ? ('user' as const) : ('assistant' as const),
      // Retry keeps the character whose reply it replaces.
      aiSpeaker: target.previous !== undefined ? (target.previous.name ?? s.aiName) : undefined,
    };
    const built = await buildPrompt(effective, { ...options, countTokens: counter }).catch(() =>
      // The server's tokenizer failed: estimate rather than refuse to generate.
      buildPrompt(effective, options),
    );
    if (run.finished) return;
    if (s.mode === 'chat' && chatSpeakers(s).length > 1 && !target.impersonate && built.speaker !== undefined) {
      run.speaker = built.speaker;
      generation.value = { ...generation.value, speaker: built.speaker };
    }
    request = toTextRequest(built, effective, config, def);
    lastRequest.value = { prompt: built.prompt, body: request };
    stats.value = {
      ...stats.value!,
      promptTokens: built.promptTokens,
      budget: built.budget,
      trimmedChars: built.trimmedChars,
      exactCount: built.exactCount,
    };
    await consume(run, client, request, built.stopSequences);
  } catch (error) {
    if (run.finished) return;
    const partial = error instanceof AbortedError ? error.partial?.text : undefined;
    const text = liveText.text || partial || '';
    finish(run, { text, stopReason: 'error' }, friendlyError(error, connectionState.value.info?.url ?? ''));
    if (error instanceof HttpStatusError && (error.status === 401 || error.status === 403)) panelTab.value = 'connect';
  }
}

async function consume(run: Run, client: TextClient, request: TextRequest, stops: string[]): Promise<void> {
  const config = connectionConfig.value;
  const signal = run.controller.signal;
  const firstToken = () => {
    if (stats.value !== undefined && stats.value.firstTokenMs === undefined) {
      stats.value = { ...stats.value, firstTokenMs: performance.now() - stats.value.startedAt };
      generation.value = { ...generation.value, phase: 'streaming' };
    }
  };
  if (config.streaming === 'off') {
    const result = await client.generate(request, { signal });
    if (run.finished) return;
    firstToken();
    liveText.set(run.trim ? result.text.trimStart() : result.text);
    finish(run, result);
    return;
  }
  // Polling (a Kobold server behind a proxy that buffers event streams) yields the same events as a stream.
  const stream =
    config.streaming === 'poll' && client instanceof KoboldClient
      ? client.poll(request, { signal })
      : client.stream(request, { signal });
  for await (const event of stream) {
    if (run.finished) return;
    if (event.type === 'text') {
      log(run, `text ${JSON.stringify(event.text)}`);
      firstToken();
      run.chunks += 1;
      const delta = run.trim && liveText.text.length === 0 ? event.text.trimStart() : event.text;
      liveText.append(delta);
      // Stop strings the provider could not take (OpenAI allows four) still end the reply, unshown.
      const full = liveText.text;
      const at = findStop(full, delta.length, stops);
      if (at !== -1) {
        liveText.set(full.slice(0, at));
        stream.abort();
        finish(run, { text: full.slice(0, at), stopReason: 'stop' });
        return;
      }
    } else if (event.type === 'status' && event.status === 'degraded') {
      // Not an error: the reply keeps coming, only by polling, so the user learns why it updates in steps.
      notice.value = { kind: 'info', text: degradedNote(event.detail?.reason) };
      log(run, `status degraded: ${event.detail?.reason ?? ''}`);
    } else if (event.type === 'status') {
      const d = event.detail;
      const where =
        d?.queuePosition !== undefined
          ? ` (position ${d.queuePosition})`
          : d?.attempt !== undefined
            ? ` (attempt ${d.attempt})`
            : '';
      generation.value = { ...generation.value, status: `${event.status}${where}` };
      log(run, `status ${event.status}${where}${d?.message ? `: ${d.message}` : ''}`);
    } else if (event.type === 'finish') {
      log(
        run,
        `finish ${event.result.stopReason}${event.result.usage ? ` ${JSON.stringify(event.result.usage)}` : ''}`,
      );
      finish(run, { ...event.result, text: liveText.text || event.result.text });
      return;
    }
  }
  if (!run.finished) finish(run, { text: liveText.text, stopReason: 'stop' });
}

/** The note shown when the SDK found the stream held back by a proxy and went on by polling. */
export function degradedNote(reason: string | undefined): string {
  const why = reason ? ` (${reason})` : '';
  return `A proxy between here and the server holds the stream back${why}, so replies now update by polling the server twice a second.`;
}
