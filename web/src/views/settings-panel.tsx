import { providers, samplerSupport } from '../api/providers.ts';
import { NumberField } from '../components/number-field.tsx';
import type { InstructTags } from '../model/session.ts';
import { MAX_LENGTH_SHARE, planLengths } from '../prompt/context-lengths.ts';
import { instructTemplates } from '../prompt/instruct-templates.ts';
import { setField, setGen, setInstruct, setSamplers } from '../state/actions.ts';
import { connectionConfig, connectionState } from '../state/connection.ts';
import { deleteUserPreset, findPreset, samplerPresets, saveUserPreset, userPresets } from '../state/sampler-presets.ts';
import { session } from '../state/store.ts';
import { renderMarkdown, setRenderMarkdown } from '../state/view-settings.ts';

const tagLabels: [keyof InstructTags, string][] = [
  ['systemStart', 'System start'],
  ['systemEnd', 'System end'],
  ['userStart', 'User start'],
  ['userEnd', 'User end'],
  ['assistantStart', 'Assistant start'],
  ['assistantEnd', 'Assistant end'],
];

const splitNames = (v: string) =>
  v
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n.length > 0);

/** Lengths, samplers with presets, stop strings, names and instruct templates. Stored per session. */
export function SettingsPanel() {
  const s = session.value;
  const sm = s.gen.samplers;
  const serverCtx = connectionState.value.info?.contextSize;
  // The fields show what a generation will use; a lowered setting says so underneath.
  const lengths = planLengths(s.gen, serverCtx);
  const api = providers[connectionConfig.value.provider].api;
  const supported = samplerSupport[api];
  // Samplers this provider ignores are shown greyed out, with the reason, rather than sent for nothing.
  const off = (key: keyof typeof sm) =>
    supported.has(key)
      ? {}
      : { disabled: true, title: `${providers[connectionConfig.value.provider].label} does not take this sampler` };
  return (
    <section class="panel-body">
      <h3>Length</h3>
      <div class="grid">
        <NumberField
          label="Max length"
          testId="max-length"
          value={lengths.maxLength}
          min={1}
          max={Math.max(1, Math.floor(lengths.maxContextLength * MAX_LENGTH_SHARE))}
          onChange={(v) => setGen({ maxLength: v })}
        />
        <NumberField
          label="Context size"
          testId="context-size"
          value={lengths.maxContextLength}
          min={64}
          max={serverCtx ?? 1_000_000}
          title={serverCtx ? `The server's context is ${serverCtx} tokens` : undefined}
          onChange={(v) => setGen({ maxContextLength: v })}
        />
      </div>
      {lengths.notes.map((note) => (
        <p key={note} class="hint" data-testid="length-note">
          {note}
        </p>
      ))}
      <label
        class="check"
        title={['kindling', 'kobold'].includes(connectionConfig.value.provider) ? undefined : 'Kobold servers only'}
      >
        <input
          type="checkbox"
          data-testid="ban-eos"
          checked={s.gen.banEos === true}
          onChange={(e) => setGen({ banEos: e.currentTarget.checked })}
        />
        Ban end-of-text (the model never ends a reply early; Kobold servers)
      </label>
      <h3>Samplers</h3>
      <label class="field wide">
        <span>Preset</span>
        <select
          data-testid="sampler-preset"
          value={s.gen.samplerPreset}
          onChange={(e) => {
            const samplers = findPreset(e.currentTarget.value);
            if (samplers) setSamplers(samplers, e.currentTarget.value);
          }}
        >
          {Object.entries(samplerPresets).map(([id, p]) => (
            <option key={id} value={id}>
              {p.label}
            </option>
          ))}
          {Object.keys(userPresets.value).map((name) => (
            <option key={name} value={`user:${name}`}>
              {name} (saved)
            </option>
          ))}
          <option value="custom">Custom</option>
        </select>
      </label>
      <div class="row">
        <button
          type="button"
          data-testid="save-preset"
          onClick={() => {
            const name = prompt('Save these samplers as preset', '')?.trim();
            if (name) setSamplers({}, saveUserPreset(name, sm));
          }}
        >
          Save as preset…
        </button>
        {s.gen.samplerPreset.startsWith('user:') ? (
          <button
            type="button"
            class="link"
            onClick={() => {
              deleteUserPreset(s.gen.samplerPreset.slice(5));
              setSamplers({}, 'custom');
            }}
          >
            delete preset
          </button>
        ) : null}
      </div>
      <div class="grid">
        <NumberField
          {...off('temperature')}
          label="Temperature"
          testId="temperature"
          value={sm.temperature}
          step={0.05}
          min={0}
          max={5}
          onChange={(v) => setSamplers({ temperature: v })}
        />
        <NumberField
          {...off('top_p')}
          label="Top P"
          value={sm.top_p}
          step={0.01}
          min={0}
          max={1}
          onChange={(v) => setSamplers({ top_p: v })}
        />
        <NumberField
          {...off('top_k')}
          label="Top K"
          value={sm.top_k}
          min={0}
          onChange={(v) => setSamplers({ top_k: v })}
        />
        <NumberField
          {...off('min_p')}
          label="Min P"
          value={sm.min_p}
          step={0.01}
          min={0}
          max={1}
          onChange={(v) => setSamplers({ min_p: v })}
        />
        <NumberField
          {...off('rep_pen')}
          label="Rep. penalty"
          value={sm.rep_pen}
          step={0.01}
          min={1}
          max={3}
          onChange={(v) => setSamplers({ rep_pen: v })}
        />
        <NumberField
          {...off('rep_pen_range')}
          label="Rep. range"
          value={sm.rep_pen_range}
          min={0}
          onChange={(v) => setSamplers({ rep_pen_range: v })}
        />
        <NumberField
          {...off('dry_multiplier')}
          label="DRY mult."
          value={sm.dry_multiplier}
          step={0.1}
          min={0}
          onChange={(v) => setSamplers({ dry_multiplier: v })}
        />
        <NumberField
          {...off('dry_base')}
          label="DRY base"
          value={sm.dry_base}
          step={0.05}
          min={1}
          onChange={(v) => setSamplers({ dry_base: v })}
        />
        <NumberField
          {...off('dry_allowed_length')}
          label="DRY length"
          value={sm.dry_allowed_length}
          min={1}
          onChange={(v) => setSamplers({ dry_allowed_length: v })}
        />
        <NumberField
          {...off('xtc_threshold')}
          label="XTC thresh."
          value={sm.xtc_threshold}
          step={0.01}
          min={0}
          max={1}
          onChange={(v) => setSamplers({ xtc_threshold: v })}
        />
        <NumberField
          {...off('xtc_probability')}
          label="XTC prob."
          value={sm.xtc_probability}
          step={0.05}
          min={0}
          max={1}
          onChange={(v) => setSamplers({ xtc_probability: v })}
        />
        <NumberField
          {...off('seed')}
          label="Seed (-1 random)"
          value={sm.seed}
          min={-1}
          onChange={(v) => setSamplers({ seed: v })}
        />
      </div>
      <label class="field wide">
        <span>Stop sequences (one per line; \n for a newline)</span>
        <textarea
          rows={2}
          value={s.gen.stopSequences.map((x) => x.replaceAll('\n', '\\n')).join('\n')}
          onChange={(e) =>
            setGen({
              stopSequences: e.currentTarget.value
                .split('\n')
                .map((x) => x.replaceAll('\\n', '\n'))
                .filter((x) => x.length > 0),
            })
          }
        />
      </label>
      <h3>Display</h3>
      <label class="check">
        <input
          type="checkbox"
          data-testid="markdown-toggle"
          checked={renderMarkdown.value}
          onChange={(e) => setRenderMarkdown(e.currentTarget.checked)}
        />
        Render Markdown in chat and instruct replies
      </label>
      <h3>Names</h3>
      <div class="grid">
        <label class="field">
          <span>Your name</span>
          <input value={s.userName} onChange={(e) => setField('userName', e.currentTarget.value || 'You')} />
        </label>
        <label class="field">
          <span>AI name</span>
          <input value={s.aiName} onChange={(e) => setField('aiName', e.currentTarget.value || 'AI')} />
        </label>
      </div>
      {s.mode === 'chat' ? (
        <label class="field wide" title="They answer in turn after the AI name above">
          <span>More characters (group chat, comma separated)</span>
          <input
            data-testid="group-names"
            value={(s.otherAiNames ?? []).join(', ')}
            onChange={(e) => setField('otherAiNames', splitNames(e.currentTarget.value))}
          />
        </label>
      ) : null}
      {s.mode === 'instruct' ? (
        <>
          <h3>Instruct template</h3>
          <label class="field wide">
            <span>Template</span>
            <select value={s.instruct.preset} onChange={(e) => setInstruct({ preset: e.currentTarget.value })}>
              {Object.entries(instructTemplates).map(([id, t]) => (
                <option key={id} value={id}>
                  {t.label}
                </option>
              ))}
              <option value="custom">Custom</option>
            </select>
          </label>
          {s.instruct.preset === 'custom' ? (
            <div class="grid">
              {tagLabels.map(([key, label]) => (
                <label class="field" key={key}>
                  <span>{label}</span>
                  <input
                    value={s.instruct.custom[key].replaceAll('\n', '\\n')}
                    onChange={(e) =>
                      setInstruct({
                        custom: { ...s.instruct.custom, [key]: e.currentTarget.value.replaceAll('\\n', '\n') },
                      })
                    }
                  />
                </label>
              ))}
            </div>
          ) : null}
        </>
      ) : null}
      {s.mode === 'instruct' || s.mode === 'chat' ? (
        <label class="field wide">
          <span>System prompt</span>
          <textarea
            rows={3}
            value={s.instruct.systemPrompt}
            onChange={(e) => setInstruct({ systemPrompt: e.currentTarget.value })}
          />
        </label>
      ) : null}
    </section>
  );
}
