import { effect } from '@preact/signals';
import { createSession, newId, type Session } from '../model/session.ts';
import { loadSession } from './actions.ts';
import { getKv, listSessions, loadSessionRecord, saveSession, setKv } from './session-db.ts';
import { notice, session, sessionList } from './store.ts';

// Autosave: every change to the session is written to IndexedDB after a short debounce, and at once when the
// page is hidden (tab switch, close, mobile backgrounding). Text still streaming is kept as a "draft" record
// once a second, so even a crashed tab loses at most a second of a reply.

const debounceMs = 300;
let timer: ReturnType<typeof setTimeout> | undefined;
let chain: Promise<void> = Promise.resolve();
let lastSaved: Session | undefined;
/** Revision we last wrote per session; kept outside the signal so recording it does not trigger a save. */
const knownRev = new Map<string, number>();
/** Deleted sessions: a save still queued for one of them must not bring it back. */
const deleted = new Set<string>();

export function forgetSession(id: string): void {
  deleted.add(id);
}

export interface Draft {
  turnId: string;
  text: string;
  continues: boolean;
}

function persist(): Promise<void> {
  const s = session.value;
  if (s === lastSaved || deleted.has(s.id)) return chain;
  lastSaved = s;
  chain = chain
    .then(async () => {
      const result = await saveSession({ ...s, rev: knownRev.get(s.id) ?? s.rev });
      knownRev.set(result.saved.id, result.saved.rev);
      if (result.conflict) {
        notice.value = {
          kind: 'error',
          text: `"${s.name}" was changed in another tab. Your version was kept as "${result.saved.name}".`,
        };
        if (session.value.id === s.id) loadSession(result.saved);
      }
      await setKv('last-session', session.value.id);
      sessionList.value = await listSessions();
    })
    .catch((error: unknown) => {
      notice.value = { kind: 'error', text: `Autosave failed: ${String(error)}. Export your session to be safe.` };
    });
  return chain;
}

/** Saves now (used before switching sessions and when the page is hidden). */
export function flushSave(): Promise<void> {
  if (timer !== undefined) clearTimeout(timer);
  timer = undefined;
  return persist();
}

let draftTimer: ReturnType<typeof setTimeout> | undefined;
let pendingDraft: { sessionId: string; draft: Draft } | undefined;

export function saveDraft(sessionId: string, draft: Draft): void {
  pendingDraft = { sessionId, draft };
  draftTimer ??= setTimeout(() => {
    draftTimer = undefined;
    const d = pendingDraft;
    pendingDraft = undefined;
    if (d !== undefined) void setKv(`draft:${d.sessionId}`, d.draft);
  }, 1000);
}

export function clearDraft(sessionId: string): Promise<void> {
  if (draftTimer !== undefined) clearTimeout(draftTimer);
  draftTimer = undefined;
  pendingDraft = undefined;
  return setKv(`draft:${sessionId}`, undefined);
}

/** A reply cut off by a reload or crash comes back as a turn marked as interrupted. */
function withDraft(s: Session, draft: Draft | undefined): Session {
  if (draft === undefined || draft.text.length === 0) return s;
  const error = 'Interrupted: the page was closed while this reply was streaming. The text received is kept.';
  if (draft.continues && s.turns.some((t) => t.id === draft.turnId)) {
    return {
      ...s,
      turns: s.turns.map((t) => (t.id === draft.turnId ? { ...t, text: t.text + draft.text, error } : t)),
    };
  }
  return { ...s, turns: [...s.turns, { id: newId(), role: 'assistant', text: draft.text, error }] };
}

export async function openStoredSession(id: string): Promise<boolean> {
  const stored = await loadSessionRecord(id);
  if (stored === undefined) return false;
  knownRev.set(stored.id, stored.rev);
  const draft = await getKv<Draft>(`draft:${id}`);
  const restored = withDraft(stored, draft);
  lastSaved = restored === stored ? stored : undefined;
  loadSession(restored);
  if (draft !== undefined) await clearDraft(id);
  await setKv('last-session', id);
  return true;
}

export async function startAutosave(): Promise<void> {
  try {
    const lastId = await getKv<string>('last-session');
    if (lastId === undefined || !(await openStoredSession(lastId))) loadSession(createSession());
    sessionList.value = await listSessions();
  } catch (error) {
    notice.value = {
      kind: 'error',
      text: `Browser storage is unavailable (${String(error)}); work will not be saved.`,
    };
    return;
  }
  effect(() => {
    const s = session.value;
    if (s === lastSaved) return;
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      void persist();
    }, debounceMs);
  });
  const flushAll = () => {
    void flushSave();
    if (pendingDraft !== undefined) void setKv(`draft:${pendingDraft.sessionId}`, pendingDraft.draft);
  };
  addEventListener('pagehide', flushAll);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'hidden') flushAll();
  });
  // Ask the browser not to evict our storage under pressure (Lite users lost stories to cleared storage).
  void navigator.storage?.persist?.().catch(() => undefined);
}
