import type { WorldInfoEntry } from '../model/session.ts';
import { addWorldInfo, deleteWorldInfo, setField, updateWorldInfo } from '../state/actions.ts';
import { lastRequest, session } from '../state/store.ts';

const splitKeys = (v: string) =>
  v
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k.length > 0);

function WorldInfoRow(props: { entry: WorldInfoEntry }) {
  const e = props.entry;
  const set = (patch: Partial<WorldInfoEntry>) => updateWorldInfo(e.id, patch);
  return (
    <div class="wi-entry">
      <div class="grid">
        <label class="field">
          <span>Keys (comma separated)</span>
          <input value={e.keys.join(', ')} onChange={(ev) => set({ keys: splitKeys(ev.currentTarget.value) })} />
        </label>
        <label class="field">
          <span>Secondary keys</span>
          <input
            value={e.secondaryKeys.join(', ')}
            onChange={(ev) => set({ secondaryKeys: splitKeys(ev.currentTarget.value) })}
          />
        </label>
        <label class="field">
          <span>Anti-keys</span>
          <input
            value={e.antiKeys.join(', ')}
            onChange={(ev) => set({ antiKeys: splitKeys(ev.currentTarget.value) })}
          />
        </label>
        <label class="field">
          <span>Probability %</span>
          <input
            type="number"
            min={0}
            max={100}
            value={e.probability}
            onChange={(ev) => set({ probability: Number(ev.currentTarget.value) || 0 })}
          />
        </label>
      </div>
      <textarea
        rows={2}
        placeholder="Entry text"
        value={e.content}
        onChange={(ev) => set({ content: ev.currentTarget.value })}
      />
      <div class="row">
        <label class="check">
          <input type="checkbox" checked={e.constant} onChange={(ev) => set({ constant: ev.currentTarget.checked })} />
          Always
        </label>
        <label class="check">
          <input
            type="checkbox"
            checked={e.selective}
            onChange={(ev) => set({ selective: ev.currentTarget.checked })}
          />
          Needs secondary
        </label>
        <label class="check">
          <input
            type="checkbox"
            checked={e.caseSensitive}
            onChange={(ev) => set({ caseSensitive: ev.currentTarget.checked })}
          />
          Case sensitive
        </label>
        <label class="check">
          <input type="checkbox" checked={e.disabled} onChange={(ev) => set({ disabled: ev.currentTarget.checked })} />
          Off
        </label>
        <button type="button" class="link" onClick={() => deleteWorldInfo(e.id)}>
          delete
        </button>
      </div>
    </div>
  );
}

/** Memory, author's note and world info: the context sent ahead of the story. */
export function ContextPanel() {
  const s = session.value;
  const last = lastRequest.value;
  return (
    <section class="panel-body">
      <label class="field wide">
        <span>Memory (always sent first)</span>
        <textarea
          data-testid="memory"
          rows={4}
          value={s.memory}
          onInput={(e) => setField('memory', e.currentTarget.value)}
        />
      </label>
      <label class="field wide">
        <span>Author’s note</span>
        <textarea
          data-testid="authors-note"
          rows={2}
          value={s.authorsNote}
          onInput={(e) => setField('authorsNote', e.currentTarget.value)}
        />
      </label>
      <div class="grid">
        <label class="field" title="Turns (story: lines) before the end where the note is inserted">
          <span>Insertion depth</span>
          <input
            type="number"
            min={0}
            value={s.authorsNoteDepth}
            onChange={(e) => setField('authorsNoteDepth', Number(e.currentTarget.value) || 0)}
          />
        </label>
        <label class="field">
          <span>Template (&lt;|&gt; = note)</span>
          <input
            value={s.authorsNoteTemplate}
            onChange={(e) => setField('authorsNoteTemplate', e.currentTarget.value)}
          />
        </label>
      </div>
      <h3>
        World info <small>({s.worldInfo.length})</small>
      </h3>
      {s.worldInfo.map((e) => (
        <WorldInfoRow key={e.id} entry={e} />
      ))}
      <button type="button" onClick={addWorldInfo}>
        Add entry
      </button>
      <details class="inspector">
        <summary>Last request: prompt, body and stream events</summary>
        {last ? (
          <>
            <pre data-testid="last-prompt">{last.prompt}</pre>
            <pre>{JSON.stringify(last.body, null, 2)}</pre>
            {last.events ? <pre data-testid="stream-log">{last.events.join('\n')}</pre> : null}
          </>
        ) : (
          <p>Nothing sent yet.</p>
        )}
      </details>
    </section>
  );
}
