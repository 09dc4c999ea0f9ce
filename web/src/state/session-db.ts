import type { Session } from '../model/session.ts';
import { newId } from '../model/session.ts';
import type { SessionMeta } from './store.ts';

// IndexedDB: one record per session plus a small meta record, so listing sessions never reads whole stories.
// Every write checks the stored revision inside the same transaction: a save from a stale copy (another tab,
// a slow save racing a fast one) is stored as a new session instead of overwriting newer work.

const dbName = 'kindling';
let dbPromise: Promise<IDBDatabase> | undefined;

function open(): Promise<IDBDatabase> {
  dbPromise ??= new Promise((resolve, reject) => {
    const req = indexedDB.open(dbName, 1);
    req.onupgradeneeded = () => {
      const db = req.result;
      db.createObjectStore('sessions', { keyPath: 'id' });
      db.createObjectStore('meta', { keyPath: 'id' });
      db.createObjectStore('kv');
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  return dbPromise;
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
  });
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

export function metaOf(s: Session): SessionMeta {
  return { id: s.id, name: s.name, mode: s.mode, updatedAt: s.updatedAt, turns: s.turns.length };
}

export type SaveResult = { saved: Session; conflict: false } | { saved: Session; conflict: true };

/** Saves `s` if the stored copy is not newer than `s.rev`; otherwise saves it as "<name> (conflict copy)". */
export async function saveSession(s: Session): Promise<SaveResult> {
  const db = await open();
  const tx = db.transaction(['sessions', 'meta'], 'readwrite');
  const sessions = tx.objectStore('sessions');
  const stored = (await request(sessions.get(s.id))) as Session | undefined;
  let result: SaveResult;
  if (stored !== undefined && stored.rev > s.rev) {
    const copy: Session = { ...s, id: newId('s'), name: `${s.name} (conflict copy)`, rev: 1 };
    result = { saved: copy, conflict: true };
  } else {
    result = { saved: { ...s, rev: s.rev + 1 }, conflict: false };
  }
  sessions.put(result.saved);
  tx.objectStore('meta').put(metaOf(result.saved));
  await done(tx);
  return result;
}

export async function loadSessionRecord(id: string): Promise<Session | undefined> {
  const db = await open();
  return (await request(db.transaction('sessions').objectStore('sessions').get(id))) as Session | undefined;
}

export async function loadAllSessions(): Promise<Session[]> {
  const db = await open();
  return (await request(db.transaction('sessions').objectStore('sessions').getAll())) as Session[];
}

export async function listSessions(): Promise<SessionMeta[]> {
  const db = await open();
  const all = (await request(db.transaction('meta').objectStore('meta').getAll())) as SessionMeta[];
  return all.sort((a, b) => b.updatedAt - a.updatedAt);
}

export async function deleteSessionRecord(id: string): Promise<void> {
  const db = await open();
  const tx = db.transaction(['sessions', 'meta', 'kv'], 'readwrite');
  tx.objectStore('sessions').delete(id);
  tx.objectStore('meta').delete(id);
  tx.objectStore('kv').delete(`draft:${id}`);
  await done(tx);
}

export async function getKv<T>(key: string): Promise<T | undefined> {
  const db = await open();
  return (await request(db.transaction('kv').objectStore('kv').get(key))) as T | undefined;
}

export async function setKv(key: string, value: unknown): Promise<void> {
  const db = await open();
  const tx = db.transaction('kv', 'readwrite');
  if (value === undefined) tx.objectStore('kv').delete(key);
  else tx.objectStore('kv').put(value, key);
  await done(tx);
}
