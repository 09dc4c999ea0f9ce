import type { Mode, Turn } from '../model/session.ts';

// What a mode change does to the turns, so the text reads the same before and after, both ways.
//
// Story and adventure are one running text cut into turns (the user's lines and the model's continuations glue
// together as written); chat and instruct are separate messages. So:
// - prose → turns: the story written in story mode becomes one narration block (a user turn with action
//   `story`), shown and sent as plain text rather than as something "You" said; adventure actions (do/say) stay
//   their own turns. Turns that came from chat keep their place and lose the separator they were given.
// - turns → prose: every message becomes a piece of the running text, starting on its own line. The newline
//   added for that is remembered on the turn (`storySeparator`), so that going back to chat takes it off again
//   and keeps the messages apart instead of merging them into the narration.
// Every change keeps all the text: the round trips story → chat → story and chat → story → chat read the same.

const isProse = (mode: Mode) => mode === 'story' || mode === 'adventure';

/** Adventure actions, written `> You <action>` / `> You say "<text>"`; every other turn is prose. */
export function isAction(turn: Turn): boolean {
  return turn.role === 'user' && (turn.action === 'do' || turn.action === 'say');
}

/** A narration block: story text inside a chat or instruct session. */
export function isNarration(turn: Turn): boolean {
  return turn.role === 'user' && turn.action === 'story';
}

/**
 * How a turn reads inside the running text of story and adventure modes. In adventure mode a user turn with no
 * action is a "do" (what the adventure composer wrote before actions were stored).
 */
export function proseText(turn: Turn, userName: string, mode: Mode): string {
  const legacyDo = mode === 'adventure' && turn.role === 'user' && turn.action === undefined;
  if (!isAction(turn) && !legacyDo) return turn.text;
  const body = turn.action === 'say' ? `${userName} say "${turn.text.trim()}"` : turn.text.trim();
  return `\n> ${body}\n`;
}

export function switchModeTurns(turns: readonly Turn[], from: Mode, to: Mode, userName: string): Turn[] {
  if (from === to) return [...turns];
  if (isProse(from) && isProse(to)) {
    // A story line the user wrote would read as an action in adventure mode: mark it as story text.
    return turns.map((t) => (to === 'adventure' && t.role === 'user' && t.action === undefined ? asStory(t) : t));
  }
  if (isProse(from)) return proseToTurns(turns);
  if (isProse(to)) return turnsToProse(turns, userName, to);
  return [...turns];
}

function asStory(turn: Turn): Turn {
  return { ...turn, action: 'story' };
}

function withoutSeparator(turn: Turn): Turn {
  const { storySeparator, ...rest } = turn;
  const sep = storySeparator ?? '';
  return sep.length > 0 && rest.text.startsWith(sep) ? { ...rest, text: rest.text.slice(sep.length) } : rest;
}

function proseToTurns(turns: readonly Turn[]): Turn[] {
  const out: Turn[] = [];
  let run: Turn[] = [];
  const flush = () => {
    const first = run[0];
    if (first === undefined) return;
    const text = run.map((t) => t.text).join('');
    if (text.length > 0) out.push({ id: first.id, role: 'user', action: 'story', text });
    run = [];
  };
  for (const turn of turns) {
    if (turn.storySeparator !== undefined || isAction(turn)) {
      flush();
      out.push(withoutSeparator(turn));
    } else {
      run.push(turn);
    }
  }
  flush();
  return out;
}

function turnsToProse(turns: readonly Turn[], userName: string, to: Mode): Turn[] {
  let before = '';
  return turns.map((original) => {
    // In adventure mode what the user said in a chat is speech: `> You say "…"`.
    const turn: Turn =
      to === 'adventure' && original.role === 'user' && original.action === undefined
        ? { ...original, action: 'say' }
        : original;
    const text = proseText(turn, userName, to);
    // Start each message on its own line, unless the text around it already does.
    const sep = before.length === 0 || before.endsWith('\n') || text.startsWith('\n') ? '' : '\n';
    before = sep + text;
    return { ...turn, text: sep + turn.text, storySeparator: sep };
  });
}
