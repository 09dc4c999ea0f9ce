import { downloadFile, fileStem } from '../components/download-file.ts';
import { exportBackup, sessionToText } from '../prompt/session-file.ts';
import { allSessions, deleteSession, duplicateSession, openSession, renameSession } from '../state/session-manager.ts';
import { isGenerating, session, sessionList } from '../state/store.ts';

/** Every saved session; opening one saves the current one first, and deleting asks first. */
export function SessionsPanel() {
  const current = session.value.id;
  const busy = isGenerating.value;
  return (
    <section class="panel-body">
      <p class="hint">Sessions are saved in this browser as you type. Export important work to a file as a backup.</p>
      <button
        type="button"
        onClick={() =>
          downloadFile(`${fileStem(session.value.name)}.md`, sessionToText(session.value), 'text/markdown')
        }
      >
        Export current as text / Markdown
      </button>
      <button
        type="button"
        data-testid="backup"
        title="One file with every session; Import restores it"
        onClick={async () =>
          downloadFile(
            `kindling-backup-${new Date().toISOString().slice(0, 10)}.json`,
            exportBackup(await allSessions()),
          )
        }
      >
        Back up all sessions
      </button>
      <ul class="sessions" data-testid="session-list">
        {sessionList.value.map((m) => (
          <li key={m.id} class={m.id === current ? 'current' : ''}>
            <button type="button" class="link name" disabled={busy} onClick={() => void openSession(m.id)}>
              {m.name}
            </button>
            <small>
              {m.mode} · {m.turns} parts · {new Date(m.updatedAt).toLocaleString()}
            </small>
            <span class="row">
              <button
                type="button"
                class="link"
                onClick={() => {
                  const name = prompt('Rename session', m.name);
                  if (name) void renameSession(m.id, name);
                }}
              >
                rename
              </button>
              <button type="button" class="link" disabled={busy} onClick={() => void duplicateSession(m.id)}>
                duplicate
              </button>
              <button
                type="button"
                class="link"
                disabled={busy}
                onClick={() => {
                  if (confirm(`Delete "${m.name}"? This cannot be undone.`)) void deleteSession(m.id);
                }}
              >
                delete
              </button>
            </span>
          </li>
        ))}
      </ul>
    </section>
  );
}
