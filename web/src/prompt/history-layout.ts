import type { Session } from '../model/session.ts';
import { chatSpeakers, nextSpeaker } from './group-chat.ts';
import { instructStopSequences, instructTags } from './instruct-templates.ts';
import { isNarration, proseText } from './mode-switch.ts';
import { stripReasoning } from './reasoning.ts';

/**
 * How one mode lays the history out as text: blocks are the units the budget drops from the front and the
 * author's note depth counts from the back. `splittable` modes (story, adventure) are one running text cut into
 * lines, so the oldest kept line may be cut mid-way; chat and instruct drop whole turns.
 */
export interface HistoryLayout {
  blocks: string[];
  /** Index of the first block of each turn, so message-based providers can keep the same turns. */
  turnStarts: number[];
  tail: string;
  stops: string[];
  /** Chat: the character the reply is written as. */
  speaker?: string;
  splittable: boolean;
}

export interface LayoutOptions {
  /** Continue the last assistant turn instead of starting a new one (no end tag, no new speaker tag). */
  continueLast: boolean;
  /** "user" writes the user's next turn (impersonate) in chat and instruct modes. */
  speaker?: 'assistant' | 'user' | undefined;
  /** Chat: the AI character who replies; by default the next one in a group chat's order. */
  aiSpeaker?: string | undefined;
}

function lineEnded(text: string): string {
  return text.endsWith('\n') ? text : `${text}\n`;
}

function splitLines(text: string): string[] {
  return text.length === 0 ? [] : text.split(/(?<=\n)/);
}

export function layoutHistory(session: Session, options: LayoutOptions): HistoryLayout {
  const { turns, mode } = session;
  if (mode === 'story' || mode === 'adventure') {
    const text = turns.map((t) => proseText(t, session.userName, mode)).join('');
    return {
      blocks: splitLines(text),
      turnStarts: [],
      tail: '',
      stops: mode === 'adventure' ? ['\n> '] : [],
      splittable: true,
    };
  }
  const blocks: string[] = [];
  const turnStarts: number[] = [];
  const last = turns.length - 1;
  if (mode === 'chat') {
    turns.forEach((turn, i) => {
      const name = turn.name ?? (turn.role === 'user' ? session.userName : session.aiName);
      const open = options.continueLast && i === last && turn.role === 'assistant';
      turnStarts.push(blocks.length);
      if (isNarration(turn)) {
        // Story text inside a chat is narration, not something the user said.
        blocks.push(lineEnded(turn.text));
        return;
      }
      const text = turn.role === 'assistant' && !open ? stripReasoning(turn.text) : turn.text;
      blocks.push(`${name}: ${text}${open ? '' : '\n'}`);
    });
    const continuing = options.continueLast && turns[last]?.role === 'assistant';
    const speakers = chatSpeakers(session);
    if (options.speaker === 'user') {
      return {
        blocks,
        turnStarts,
        tail: `${session.userName}:`,
        stops: speakers.map((n) => `\n${n}:`),
        splittable: false,
      };
    }
    const speaker = continuing ? (turns[last]?.name ?? session.aiName) : (options.aiSpeaker ?? nextSpeaker(session));
    return {
      blocks,
      turnStarts,
      tail: continuing ? '' : `${speaker}:`,
      // The reply ends where the model starts writing anyone else's line.
      stops: [session.userName, ...speakers.filter((n) => n !== speaker)].map((n) => `\n${n}:`),
      speaker,
      splittable: false,
    };
  }
  const tags = instructTags(session.instruct);
  turns.forEach((turn, i) => {
    turnStarts.push(blocks.length);
    if (isNarration(turn)) {
      blocks.push(lineEnded(turn.text));
    } else if (turn.role === 'user') {
      blocks.push(`${tags.userStart}${turn.text}${tags.userEnd}`);
    } else {
      const open = options.continueLast && i === last;
      const text = open ? turn.text : stripReasoning(turn.text);
      blocks.push(`${tags.assistantStart}${text}${open ? '' : tags.assistantEnd}`);
    }
  });
  const continuing = options.continueLast && turns[last]?.role === 'assistant';
  if (options.speaker === 'user') {
    const stops = [tags.assistantStart.trim(), tags.userEnd.trim()].filter((x) => x.length > 0);
    return { blocks, turnStarts, tail: tags.userStart, stops: [...new Set(stops)], splittable: false };
  }
  return {
    blocks,
    turnStarts,
    tail: continuing ? '' : tags.assistantStart,
    stops: instructStopSequences(tags),
    splittable: false,
  };
}
