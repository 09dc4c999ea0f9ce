import type { Session } from '../model/session.ts';
import { formatAuthorsNote, insertAuthorsNote } from './authors-note.ts';
import { chatSpeakers } from './group-chat.ts';
import { type HistoryLayout, layoutHistory } from './history-layout.ts';
import { instructTags } from './instruct-templates.ts';
import { stripReasoning } from './reasoning.ts';
import { activeWorldInfo } from './world-info.ts';

/** Counts tokens of a text; the server's tokenizer when it has one, `estimateTokens` otherwise. */
export type TokenCounter = (text: string) => Promise<number> | number;

/** Deliberately pessimistic (English runs ~4 characters a token) so an estimated prompt rarely overflows. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 3);
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface BuildOptions {
  continueLast?: boolean;
  /** "user": write the user's next turn instead of a reply (impersonate; chat and instruct modes). */
  speaker?: 'assistant' | 'user' | undefined;
  /** Chat: the AI character who replies (Retry keeps the one it replaces); default: next in group order. */
  aiSpeaker?: string | undefined;
  countTokens?: TokenCounter | undefined;
  random?: (() => number) | undefined;
}

export interface BuiltPrompt {
  /** Text-completion prompt (Kobold, OpenAI /completions, Ollama generate). */
  prompt: string;
  /** The same content as role-tagged messages for chat-completion providers (Anthropic, OpenAI chat). */
  messages: ChatMessage[];
  stopSequences: string[];
  promptTokens: number;
  /** True when `promptTokens` came from a real tokenizer. */
  exactCount: boolean;
  /** max_context_length - max_length: what the prompt may use. */
  budget: number;
  /** Characters of history left out at the front (0 = everything fits). */
  trimmedChars: number;
  worldInfoIds: string[];
  /** Chat mode: the character the reply is written as. */
  speaker?: string;
}

const storySystemPrompt =
  'Continue the text below directly from where it stops. Write only the continuation, with no commentary.';

/** Where the kept history starts: a character offset for running text, a block index for turns. */
type Cut = number;

function alignToWord(text: string, start: number): number {
  if (start <= 0) return 0;
  if (start >= text.length) return text.length;
  if (/\s/.test(text[start - 1]!)) return start;
  const next = text.slice(start, start + 40).search(/\s/);
  return next === -1 ? start : start + next + 1;
}

function keptBlocks(layout: HistoryLayout, history: string, cut: Cut): string[] {
  if (!layout.splittable) return layout.blocks.slice(cut);
  const kept = history.slice(cut);
  return kept.length === 0 ? [] : kept.split(/(?<=\n)/);
}

export async function buildPrompt(session: Session, options: BuildOptions = {}): Promise<BuiltPrompt> {
  const counter = options.countTokens ?? estimateTokens;
  const exact = options.countTokens !== undefined;
  const layout = layoutHistory(session, {
    continueLast: options.continueLast ?? false,
    speaker: options.speaker,
    aiSpeaker: options.aiSpeaker,
  });
  const history = layout.blocks.join('');
  const budget = Math.max(16, session.gen.maxContextLength - session.gen.maxLength);

  // World info looks at roughly what can fit, not at the whole history, so old mentions do not pull entries in.
  const scanText = history.slice(-budget * 4);
  const worldInfo = activeWorldInfo(session.worldInfo, scanText, { random: options.random });
  const wiText = worldInfo.map((e) => e.content.trim()).join('\n');
  const note = formatAuthorsNote(session.authorsNote, session.authorsNoteTemplate);
  const context = [session.memory.trim(), wiText].filter((s) => s.length > 0).join('\n');

  let header = context.length > 0 ? `${context}\n` : '';
  if (session.mode === 'instruct') {
    const tags = instructTags(session.instruct);
    const system = [session.instruct.systemPrompt.trim(), context].filter((s) => s.length > 0).join('\n');
    header = system.length > 0 ? `${tags.systemStart}${system}${tags.systemEnd}` : '';
  }

  const assemble = (cut: Cut): string =>
    header + insertAuthorsNote(keptBlocks(layout, history, cut), note, session.authorsNoteDepth).join('') + layout.tail;

  // First guess from the estimate, then correct it against the real counter a few times. Each correction uses
  // the measured characters-per-token ratio of this very prompt, so two or three counts are normally enough.
  const total = layout.splittable ? history.length : layout.blocks.length;
  let cut: Cut = 0;
  const fixedEstimate = estimateTokens(header + note + layout.tail) + 2;
  if (layout.splittable) {
    cut = alignToWord(history, Math.max(0, history.length - (budget - fixedEstimate) * 3));
  } else {
    let used = fixedEstimate;
    cut = layout.blocks.length;
    while (cut > 0 && used + estimateTokens(layout.blocks[cut - 1]!) <= budget) {
      cut -= 1;
      used += estimateTokens(layout.blocks[cut]!);
    }
  }

  let best: { prompt: string; tokens: number; cut: Cut } | undefined;
  let smallest: { prompt: string; tokens: number; cut: Cut } | undefined;
  for (let round = 0; round < 5; round++) {
    const prompt = assemble(cut);
    const tokens = await counter(prompt);
    const fits = tokens <= budget;
    if (fits && (!best || cut < best.cut)) best = { prompt, tokens, cut };
    if (!smallest || tokens < smallest.tokens) smallest = { prompt, tokens, cut };
    const ratio = prompt.length / Math.max(1, tokens);
    let next: Cut;
    if (fits) {
      if (cut === 0) break;
      const room = budget - tokens;
      if (layout.splittable) {
        next = alignToWord(history, Math.max(0, cut - Math.floor(room * ratio * 0.9)));
      } else {
        next = cut;
        let gained = 0;
        while (next > 0 && gained + layout.blocks[next - 1]!.length / ratio <= room * 0.9) {
          next -= 1;
          gained += layout.blocks[next]!.length / ratio;
        }
      }
      if (next >= cut) break;
    } else {
      if (cut >= total) break;
      const over = tokens - budget;
      if (layout.splittable) {
        next = alignToWord(history, Math.min(total, cut + Math.ceil(over * ratio * 1.1) + 1));
      } else {
        next = cut;
        let dropped = 0;
        while (next < total && dropped < over) {
          dropped += layout.blocks[next]!.length / ratio;
          next += 1;
        }
      }
      // Never step back into a cut already proven too small.
      if (best && next < best.cut) next = best.cut;
    }
    cut = next;
  }
  const chosen = best ?? smallest!;

  const stopSequences = [...new Set([...layout.stops, ...session.gen.stopSequences].filter((s) => s.length > 0))];
  const trimmedChars = layout.splittable
    ? chosen.cut
    : layout.blocks.slice(0, chosen.cut).reduce((n, b) => n + b.length, 0);
  return {
    prompt: chosen.prompt,
    messages: withImpersonation(
      buildMessages(session, layout, history, chosen.cut, context, note, options.continueLast ?? false),
      session,
      options.speaker,
    ),
    stopSequences,
    promptTokens: chosen.tokens,
    exactCount: exact,
    budget,
    trimmedChars,
    worldInfoIds: worldInfo.map((e) => e.id),
    ...(layout.speaker !== undefined ? { speaker: layout.speaker } : {}),
  };
}

function buildMessages(
  session: Session,
  layout: HistoryLayout,
  history: string,
  cut: Cut,
  context: string,
  note: string,
  continueLast: boolean,
): ChatMessage[] {
  if (layout.splittable) {
    const system = [storySystemPrompt, context].filter((s) => s.length > 0).join('\n\n');
    const text = insertAuthorsNote(keptBlocks(layout, history, cut), note, session.authorsNoteDepth).join('');
    return [
      { role: 'system', content: system },
      { role: 'user', content: text.length > 0 ? text : '(Begin the story.)' },
    ];
  }
  // Chat APIs take one system message at the top; the author's note joins it rather than sitting mid-history.
  const group = chatSpeakers(session);
  const as = layout.speaker ?? session.aiName;
  const persona =
    session.mode !== 'chat'
      ? ''
      : group.length > 1
        ? `This is a group chat between ${session.userName}, ${group.join(', ')}. Reply as ${as} only.`
        : `You are ${as}, talking with ${session.userName}. Reply as ${as} only.`;
  const system = [persona, session.instruct.systemPrompt.trim(), context, note]
    .filter((s) => s.length > 0)
    .join('\n\n');
  const messages: ChatMessage[] = system.length > 0 ? [{ role: 'system', content: system }] : [];
  const kept = session.turns.slice(cut);
  kept.forEach((turn, i) => {
    const last = i === kept.length - 1;
    const open = last && continueLast && turn.role === 'assistant';
    const text = open ? turn.text.trimEnd() : turn.role === 'assistant' ? stripReasoning(turn.text) : turn.text;
    // In a group chat the assistant lines come from several characters: say whose each one is.
    const named = group.length > 1 && turn.role === 'assistant' ? `${turn.name ?? session.aiName}: ${text}` : text;
    messages.push({ role: turn.role, content: named });
  });
  return messages;
}

/** Chat APIs always answer as the assistant, so impersonation is asked for in words. */
function withImpersonation(messages: ChatMessage[], session: Session, speaker: BuildOptions['speaker']): ChatMessage[] {
  if (speaker !== 'user' || session.mode === 'story' || session.mode === 'adventure') return messages;
  const ask = `(Write ${session.userName}'s next message in this conversation, in their voice. Reply with the message only.)`;
  return [...messages, { role: 'user', content: ask }];
}
