import { createSession, newId, type Session } from '../model/session.ts';
import { importLiteSave, isLiteSave } from './lite-import.ts';
import { isNarration, proseText } from './mode-switch.ts';
import { importTavernCard, importTavernPng, isPng, isTavernCard } from './tavern-card.ts';

// Our own save format. Sessions never hold API keys (those live in the connection settings), so an export is
// safe to share as it is.
export const sessionFileFormat = 'kindling.session';

export interface SessionFile {
  format: typeof sessionFileFormat;
  version: 1;
  exportedAt: string;
  session: Session;
}

export function exportSession(session: Session): string {
  const file: SessionFile = { format: sessionFileFormat, version: 1, exportedAt: new Date().toISOString(), session };
  return JSON.stringify(file, null, 2);
}

/**
 * Every import becomes a new session with a fresh id, so loading a file can never overwrite work already in the
 * browser. Unknown or missing fields fall back to defaults.
 */
export function importSessionFile(data: Record<string, unknown>): Session {
  const raw = data.session as Partial<Session> | undefined;
  if (typeof raw !== 'object' || raw === null) throw new Error('The file has no session in it.');
  const base = createSession();
  return {
    ...base,
    ...raw,
    id: base.id,
    rev: 0,
    turns: Array.isArray(raw.turns) ? raw.turns.map((t) => ({ ...t, id: t.id || newId() })) : [],
    gen: { ...base.gen, ...raw.gen, samplers: { ...base.gen.samplers, ...raw.gen?.samplers } },
    instruct: { ...base.instruct, ...raw.instruct },
    worldInfo: Array.isArray(raw.worldInfo) ? raw.worldInfo : [],
  };
}

export const backupFileFormat = 'kindling.backup';

/** Every session in one file: the backup to make before clearing browser data or changing machines. */
export function exportBackup(sessions: Session[]): string {
  return JSON.stringify(
    { format: backupFileFormat, version: 1, exportedAt: new Date().toISOString(), sessions },
    null,
    2,
  );
}

/** Like `importAnyFile`, but a backup file yields all its sessions. */
export function importFileSessions(bytes: Uint8Array, fileName: string): Session[] {
  if (!isPng(bytes)) {
    let data: unknown;
    try {
      data = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      data = undefined;
    }
    const record = data as { format?: unknown; sessions?: unknown } | undefined;
    if (record?.format === backupFileFormat) {
      if (!Array.isArray(record.sessions)) throw new Error(`${fileName} is a backup without sessions.`);
      return record.sessions.map((session) => importSessionFile({ session }));
    }
  }
  return [importAnyFile(bytes, fileName)];
}

/** Recognises every format we load: our JSON, Lite/KoboldAI saves, Tavern cards (PNG or JSON). */
export function importAnyFile(bytes: Uint8Array, fileName: string): Session {
  if (isPng(bytes)) return importTavernPng(bytes);
  let data: unknown;
  try {
    data = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new Error(`${fileName} is neither JSON nor a PNG character card.`);
  }
  if (typeof data !== 'object' || data === null) throw new Error(`${fileName} is not a save file.`);
  const record = data as Record<string, unknown>;
  if (record.format === sessionFileFormat) return importSessionFile(record);
  if (isTavernCard(record)) return importTavernCard(record);
  if (isLiteSave(record)) return importLiteSave(record, fileName);
  throw new Error(`${fileName} is not a format Kindling knows (Kindling JSON, KoboldAI Lite save, Tavern card).`);
}

/** Plain-text/Markdown export: the story as written, or the conversation as "Name: text" paragraphs. */
export function sessionToText(session: Session): string {
  if (session.mode === 'story' || session.mode === 'adventure') {
    return session.turns.map((t) => proseText(t, session.userName, session.mode)).join('');
  }
  return session.turns
    .map((t) => {
      if (isNarration(t)) return t.text.trim();
      const name =
        session.mode === 'instruct'
          ? t.role === 'user'
            ? 'User'
            : 'Assistant'
          : (t.name ?? (t.role === 'user' ? session.userName : session.aiName));
      return `**${name}:** ${t.text.trim()}`;
    })
    .join('\n\n');
}
