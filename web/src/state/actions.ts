import { batch } from '@preact/signals';
import type { ActionKind, GenSettings, Mode, Samplers, Session, Turn, WorldInfoEntry } from '../model/session.ts';
import { createWorldInfoEntry, newId } from '../model/session.ts';
import { switchModeTurns } from '../prompt/mode-switch.ts';
import { session, undoHistory } from './store.ts';
import { emptyHistory, record, redo as redoStep, undo as undoStep } from './undo-history.ts';

// Typed user intents. Changes to the turn list are undoable; settings edits are not (they have their own inputs
// to change back), which matches what writers expect from Lite's undo.

function update(patch: Partial<Session>): void {
  session.value = { ...session.value, ...patch, updatedAt: Date.now() };
}

function setTurns(turns: Turn[], undoable = true): void {
  batch(() => {
    if (undoable) undoHistory.value = record(undoHistory.value, session.value.turns);
    update({ turns });
  });
}

export function loadSession(next: Session): void {
  batch(() => {
    session.value = next;
    undoHistory.value = emptyHistory();
  });
}

export function addUserTurn(text: string, action?: ActionKind): Turn {
  const turn: Turn = { id: newId(), role: 'user', text };
  if (action !== undefined) turn.action = action;
  setTurns([...session.value.turns, turn]);
  return turn;
}

/**
 * Puts a finished (or stopped, or failed) reply into the story. `merge` folds it into the previous undo step,
 * used by Retry so one Undo brings the old reply back.
 */
export function commitReply(reply: Turn, options: { continues: boolean; merge: boolean }): void {
  const turns = session.value.turns;
  const next = options.continues
    ? turns.map((t) =>
        t.id === reply.id ? { ...t, text: t.text + reply.text, error: reply.error, stopReason: reply.stopReason } : t,
      )
    : [...turns, reply];
  setTurns(next, !options.merge);
}

export function editTurn(id: string, text: string): void {
  const turns = session.value.turns;
  const old = turns.find((t) => t.id === id);
  if (old === undefined || old.text === text) return;
  setTurns(
    turns.map((t) => {
      if (t.id !== id) return t;
      const variants = t.variants?.map((v, i) => (i === t.variantIndex ? text : v));
      return { ...t, text, error: undefined, ...(variants ? { variants } : {}) };
    }),
  );
}

export function deleteTurn(id: string): void {
  setTurns(session.value.turns.filter((t) => t.id !== id));
}

/** Removes the last turn ("Back"). */
export function back(): void {
  if (session.value.turns.length > 0) setTurns(session.value.turns.slice(0, -1));
}

/** Removes the last reply so it can be generated again; returns it, or undefined when the last turn is not one. */
export function dropLastReply(): Turn | undefined {
  const last = session.value.turns.at(-1);
  if (last?.role !== 'assistant') return undefined;
  setTurns(session.value.turns.slice(0, -1));
  return last;
}

/** Shows another version of a reply that Retry produced. */
export function selectVariant(id: string, index: number): void {
  const turns = session.value.turns;
  const turn = turns.find((t) => t.id === id);
  const text = turn?.variants?.[index];
  if (turn === undefined || text === undefined) return;
  setTurns(turns.map((t) => (t.id === id ? { ...t, text, variantIndex: index } : t)));
}

export function undo(): void {
  const step = undoStep(undoHistory.value, session.value.turns);
  if (step === undefined) return;
  batch(() => {
    undoHistory.value = step.history;
    update({ turns: step.turns });
  });
}

export function redo(): void {
  const step = redoStep(undoHistory.value, session.value.turns);
  if (step === undefined) return;
  batch(() => {
    undoHistory.value = step.history;
    update({ turns: step.turns });
  });
}

/** Changes mode and reshapes the turns so the text reads the same in the new mode (mode-switch.ts). Undoable. */
export function setMode(mode: Mode): void {
  const s = session.value;
  if (s.mode === mode) return;
  const turns = switchModeTurns(s.turns, s.mode, mode, s.userName);
  batch(() => {
    undoHistory.value = record(undoHistory.value, s.turns);
    update({ mode, turns });
  });
}

export function setField<
  K extends
    | 'memory'
    | 'authorsNote'
    | 'authorsNoteDepth'
    | 'authorsNoteTemplate'
    | 'userName'
    | 'aiName'
    | 'otherAiNames'
    | 'name',
>(key: K, value: Session[K]): void {
  update({ [key]: value } as Partial<Session>);
}

export function setGen(patch: Partial<GenSettings>): void {
  update({ gen: { ...session.value.gen, ...patch } });
}

export function setSamplers(patch: Partial<Samplers>, preset = 'custom'): void {
  const gen = session.value.gen;
  update({ gen: { ...gen, samplerPreset: preset, samplers: { ...gen.samplers, ...patch } } });
}

export function setInstruct(patch: Partial<Session['instruct']>): void {
  update({ instruct: { ...session.value.instruct, ...patch } });
}

export function addWorldInfo(): void {
  update({ worldInfo: [...session.value.worldInfo, createWorldInfoEntry()] });
}

export function updateWorldInfo(id: string, patch: Partial<WorldInfoEntry>): void {
  update({ worldInfo: session.value.worldInfo.map((e) => (e.id === id ? { ...e, ...patch } : e)) });
}

export function deleteWorldInfo(id: string): void {
  update({ worldInfo: session.value.worldInfo.filter((e) => e.id !== id) });
}
