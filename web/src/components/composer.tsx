import { useSignal } from '@preact/signals';
import type { ActionKind } from '../model/session.ts';
import { back, redo, selectVariant, undo } from '../state/actions.ts';
import { generate, impersonate, retry, stop } from '../state/generation-controller.ts';
import { canRedo, canUndo, composerText, isGenerating, session } from '../state/store.ts';

const enterKey = 'kindling.enterSends';

/** The input box and the generation buttons. Stop is enabled from the moment a request starts. */
export function Composer() {
  const text = composerText;
  const action = useSignal<ActionKind>('do');
  const enterSends = useSignal(localStorage.getItem(enterKey) !== 'false');
  const busy = isGenerating.value;
  const mode = session.value.mode;
  const last = session.value.turns.at(-1);
  const variants = last?.variants?.length ?? 0;
  const index = last?.variantIndex ?? 0;

  const send = () => {
    if (busy) return;
    const input = text.value;
    text.value = '';
    void generate(input, mode === 'adventure' ? action.value : undefined);
  };

  return (
    <div class="composer">
      <textarea
        data-testid="prompt"
        value={text.value}
        rows={3}
        placeholder={
          mode === 'story'
            ? 'Add to the story (empty: continue)…'
            : mode === 'adventure'
              ? 'What do you do? (empty: continue)'
              : 'Your message… (empty: continue the last reply)'
        }
        onInput={(e) => {
          text.value = e.currentTarget.value;
        }}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && !e.shiftKey && enterSends.value && !e.isComposing) {
            e.preventDefault();
            send();
          }
        }}
      />
      <div class="buttons">
        {mode === 'adventure' ? (
          <select
            aria-label="Action kind"
            value={action.value}
            onChange={(e) => {
              action.value = e.currentTarget.value as ActionKind;
            }}
          >
            <option value="do">Do</option>
            <option value="say">Say</option>
            <option value="story">Story</option>
          </select>
        ) : null}
        <button type="button" class="primary" data-testid="generate" disabled={busy} onClick={send}>
          Generate
        </button>
        <button type="button" class="danger" data-testid="stop" disabled={!busy} onClick={stop}>
          Stop
        </button>
        <button
          type="button"
          data-testid="retry"
          disabled={busy}
          onClick={() => void retry()}
          title="Generate the last reply again"
        >
          Retry
        </button>
        {mode === 'chat' || mode === 'instruct' ? (
          <button
            type="button"
            data-testid="impersonate"
            disabled={busy}
            onClick={() => void impersonate()}
            title="Let the model write your next message into the box"
          >
            Impersonate
          </button>
        ) : null}
        <button type="button" data-testid="undo" disabled={busy || !canUndo.value} onClick={undo}>
          Undo
        </button>
        <button type="button" data-testid="redo" disabled={busy || !canRedo.value} onClick={redo}>
          Redo
        </button>
        <button type="button" data-testid="back" disabled={busy} onClick={back} title="Remove the last part">
          Back
        </button>
        {last !== undefined && variants > 1 ? (
          <span class="variants" title="Versions of the last reply made by Retry">
            <button
              type="button"
              data-testid="variant-prev"
              disabled={busy || index === 0}
              onClick={() => selectVariant(last.id, index - 1)}
              aria-label="Previous version"
            >
              ‹
            </button>
            <span data-testid="variant-count">
              {index + 1}/{variants}
            </span>
            <button
              type="button"
              data-testid="variant-next"
              disabled={busy || index >= variants - 1}
              onClick={() => selectVariant(last.id, index + 1)}
              aria-label="Next version"
            >
              ›
            </button>
          </span>
        ) : null}
        <label class="check" title="Enter sends, Shift+Enter adds a line">
          <input
            type="checkbox"
            checked={enterSends.value}
            onChange={(e) => {
              enterSends.value = e.currentTarget.checked;
              localStorage.setItem(enterKey, String(e.currentTarget.checked));
            }}
          />
          Enter sends
        </label>
      </div>
    </div>
  );
}
