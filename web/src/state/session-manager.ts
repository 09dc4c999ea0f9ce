import { createSession, newId, type Session } from '../model/session.ts';
import { loadSession } from './actions.ts';
import { flushSave, forgetSession, openStoredSession } from './autosave.ts';
import { deleteSessionRecord, listSessions, loadAllSessions, loadSessionRecord, saveSession } from './session-db.ts';
import { session, sessionList } from './store.ts';

// Session list operations. Each one saves the current session first, so switching never drops unsaved edits,
// and new sessions (new, duplicate, import) always get a fresh id.

export async function newSession(init: Partial<Session> = {}): Promise<void> {
  await flushSave();
  const current = session.value;
  loadSession(createSession({ mode: current.mode, gen: current.gen, instruct: current.instruct, ...init }));
  await flushSave();
}

export async function openSession(id: string): Promise<void> {
  if (id === session.value.id) return;
  await flushSave();
  await openStoredSession(id);
}

export async function addImportedSession(imported: Session): Promise<void> {
  await flushSave();
  loadSession({ ...imported, id: newId('s'), rev: 0, updatedAt: Date.now() });
  await flushSave();
}

/** Restores a backup: every session is added with a fresh id; the open session stays open. */
export async function addBackupSessions(sessions: Session[]): Promise<void> {
  await flushSave();
  for (const s of sessions) await saveSession({ ...s, id: newId('s'), rev: 0 });
  sessionList.value = await listSessions();
}

export async function allSessions(): Promise<Session[]> {
  await flushSave();
  return loadAllSessions();
}

export async function renameSession(id: string, name: string): Promise<void> {
  if (id === session.value.id) {
    session.value = { ...session.value, name, updatedAt: Date.now() };
    await flushSave();
    return;
  }
  const stored = await loadSessionRecord(id);
  if (stored === undefined) return;
  await saveSession({ ...stored, name, updatedAt: Date.now() });
  sessionList.value = await listSessions();
}

export async function duplicateSession(id: string): Promise<void> {
  await flushSave();
  const source = id === session.value.id ? session.value : await loadSessionRecord(id);
  if (source === undefined) return;
  loadSession({
    ...source,
    id: newId('s'),
    name: `${source.name} (copy)`,
    rev: 0,
    createdAt: Date.now(),
    updatedAt: Date.now(),
  });
  await flushSave();
}

export async function deleteSession(id: string): Promise<void> {
  forgetSession(id);
  await deleteSessionRecord(id);
  const remaining = await listSessions();
  sessionList.value = remaining;
  if (id !== session.value.id) return;
  const next = remaining[0];
  if (next === undefined || !(await openStoredSession(next.id))) {
    loadSession(createSession());
    await flushSave();
  }
}
