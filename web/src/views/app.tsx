import { Composer } from '../components/composer.tsx';
import { downloadFile, fileStem } from '../components/download-file.ts';
import { OutputView } from '../components/output-view.tsx';
import { StatsBar } from '../components/stats-bar.tsx';
import type { Mode } from '../model/session.ts';
import { exportSession, importFileSessions } from '../prompt/session-file.ts';
import { setField, setMode } from '../state/actions.ts';
import { connectionState } from '../state/connection.ts';
import { addBackupSessions, addImportedSession, newSession } from '../state/session-manager.ts';
import { isGenerating, notice, type PanelTab, panelTab, session } from '../state/store.ts';
import { ConnectPanel } from './connect-panel.tsx';
import { ContextPanel } from './context-panel.tsx';
import { SessionsPanel } from './sessions-panel.tsx';
import { SettingsPanel } from './settings-panel.tsx';

const tabs: [PanelTab, string][] = [
  ['connect', 'Connect'],
  ['settings', 'Settings'],
  ['context', 'Context'],
  ['sessions', 'Sessions'],
];

function StatusPill() {
  const st = connectionState.value;
  let text = 'Not connected';
  if (st.phase === 'connecting') text = 'Connecting…';
  if (st.phase === 'error') text = 'Connection failed';
  if (st.phase === 'connected' && st.info) {
    const ctx = st.info.contextSize ? ` · ctx ${st.info.contextSize}` : '';
    text = `${st.info.server ?? ''} ${st.info.version ?? ''} · ${st.info.model ?? 'no model'}${ctx}`.trim();
  }
  return (
    <button
      type="button"
      class={`status ${st.phase}`}
      data-testid="status"
      title={st.error ?? text}
      onClick={() => (panelTab.value = 'connect')}
    >
      {text}
    </button>
  );
}

async function importFile(file: File): Promise<void> {
  try {
    const sessions = importFileSessions(new Uint8Array(await file.arrayBuffer()), file.name);
    const [imported] = sessions;
    if (sessions.length === 1 && imported !== undefined) {
      await addImportedSession(imported);
      notice.value = { kind: 'info', text: `Imported "${imported.name}" as a new session (${imported.mode} mode).` };
    } else {
      await addBackupSessions(sessions);
      notice.value = {
        kind: 'info',
        text: `Restored ${sessions.length} sessions from ${file.name}; they are in the Sessions tab.`,
      };
    }
  } catch (error) {
    notice.value = { kind: 'error', text: `Import failed: ${error instanceof Error ? error.message : String(error)}` };
  }
}

export function App() {
  const s = session.value;
  const busy = isGenerating.value;
  const n = notice.value;
  return (
    <div class="app">
      <header class="topbar">
        <span class="brand">Kindling</span>
        <input
          class="session-name"
          aria-label="Session name"
          value={s.name}
          onChange={(e) => setField('name', e.currentTarget.value || 'Untitled')}
        />
        <select
          data-testid="mode"
          aria-label="Mode"
          value={s.mode}
          onChange={(e) => setMode(e.currentTarget.value as Mode)}
        >
          <option value="story">Story</option>
          <option value="chat">Chat</option>
          <option value="instruct">Instruct</option>
          <option value="adventure">Adventure</option>
        </select>
        <StatusPill />
        <span class="spacer" />
        <button type="button" data-testid="new-session" disabled={busy} onClick={() => void newSession()}>
          New
        </button>
        <button
          type="button"
          data-testid="export"
          onClick={() => downloadFile(`${fileStem(s.name)}.kindling.json`, exportSession(s))}
        >
          Export
        </button>
        <label class="button" title="Kindling JSON, KoboldAI Lite saves, Tavern cards (PNG/JSON)">
          Import
          <input
            type="file"
            data-testid="import"
            class="visually-hidden"
            accept=".json,.png,application/json,image/png"
            disabled={busy}
            onChange={(e) => {
              const file = e.currentTarget.files?.[0];
              e.currentTarget.value = '';
              if (file) void importFile(file);
            }}
          />
        </label>
      </header>
      {n ? (
        <div class={`notice ${n.kind}`} role={n.kind === 'error' ? 'alert' : 'status'} data-testid="notice">
          <span>{n.text}</span>
          <button type="button" class="link" onClick={() => (notice.value = undefined)} aria-label="Dismiss">
            ✕
          </button>
        </div>
      ) : null}
      <div class="layout">
        <main class="writer">
          <OutputView />
          <StatsBar />
          <Composer />
        </main>
        <aside class="side">
          <nav class="tabs">
            {tabs.map(([id, label]) => (
              <button
                type="button"
                key={id}
                class={panelTab.value === id ? 'active' : ''}
                onClick={() => (panelTab.value = id)}
              >
                {label}
              </button>
            ))}
          </nav>
          {panelTab.value === 'connect' ? <ConnectPanel /> : null}
          {panelTab.value === 'settings' ? <SettingsPanel /> : null}
          {panelTab.value === 'context' ? <ContextPanel /> : null}
          {panelTab.value === 'sessions' ? <SessionsPanel /> : null}
        </aside>
      </div>
    </div>
  );
}
