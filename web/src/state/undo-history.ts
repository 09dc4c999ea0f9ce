import type { Turn } from '../model/session.ts';

// Undo/redo over the turn list only. Turn arrays are replaced, never mutated, so a snapshot is one pointer
// and 100 steps of a long story cost almost nothing.
export interface UndoHistory {
  past: Turn[][];
  future: Turn[][];
}

export const maxUndoSteps = 100;

export const emptyHistory = (): UndoHistory => ({ past: [], future: [] });

export function record(history: UndoHistory, before: Turn[]): UndoHistory {
  const past = [...history.past, before];
  if (past.length > maxUndoSteps) past.shift();
  return { past, future: [] };
}

export function undo(history: UndoHistory, current: Turn[]): { history: UndoHistory; turns: Turn[] } | undefined {
  const previous = history.past.at(-1);
  if (previous === undefined) return undefined;
  return { history: { past: history.past.slice(0, -1), future: [current, ...history.future] }, turns: previous };
}

export function redo(history: UndoHistory, current: Turn[]): { history: UndoHistory; turns: Turn[] } | undefined {
  const next = history.future[0];
  if (next === undefined) return undefined;
  return { history: { past: [...history.past, current], future: history.future.slice(1) }, turns: next };
}
