import { useRef } from 'preact/hooks';
import { generation, session } from '../state/store.ts';
import { renderMarkdown } from '../state/view-settings.ts';
import { LiveReply } from './live-reply.tsx';
import { TurnView } from './turn-view.tsx';

const emptyHints = {
  story: 'Write the opening of your story below and press Generate; the model continues it. Click any part to edit it.',
  adventure: 'Describe the scene, then type actions ("open the door") or, with Say, speech.',
  chat: 'Say something to start the chat.',
  instruct: 'Write an instruction below.',
};

function pendingLabel(mode: string, role: 'assistant' | 'user' | undefined, userName: string, aiName: string): string {
  if (mode === 'instruct') return role === 'user' ? 'Instruction (impersonating)' : 'Response';
  return role === 'user' ? `${userName} (impersonating)` : aiName;
}

/** The story or conversation. Auto-scroll follows the stream until the user scrolls up, and resumes at the bottom. */
export function OutputView() {
  const s = session.value;
  const gen = generation.value;
  const ref = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const onGrow = () => {
    const el = ref.current;
    if (el !== null && stick.current) el.scrollTop = el.scrollHeight;
  };
  const target = gen.phase === 'idle' ? undefined : gen.targetId;
  const continuing = target !== undefined && s.turns.some((t) => t.id === target);
  // Reasoning folds only for new chat/instruct replies; a continued reply or a story passage is plain text.
  const reasoning = !continuing && (s.mode === 'chat' || s.mode === 'instruct');
  const live = target === undefined ? null : <LiveReply onGrow={onGrow} reasoning={reasoning} />;
  const waiting =
    gen.phase === 'sending' ? <span class="waiting" role="status" aria-label="waiting for the first token" /> : null;
  const story = s.mode === 'story' || s.mode === 'adventure';
  const markdown = !story && renderMarkdown.value;

  return (
    <div
      class={`output mode-${s.mode}`}
      data-testid="output"
      ref={ref}
      onScroll={(e) => {
        const el = e.currentTarget;
        stick.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 48;
      }}
    >
      {s.turns.length === 0 && target === undefined ? <p class="empty">{emptyHints[s.mode]}</p> : null}
      {story ? (
        <div class="doc">
          {s.turns.map((t) => (
            <TurnView
              key={t.id}
              turn={t}
              mode={s.mode}
              userName={s.userName}
              aiName={s.aiName}
              streaming={t.id === target}
              markdown={markdown}
            >
              {t.id === target ? live : undefined}
            </TurnView>
          ))}
          {target !== undefined && !continuing ? (
            <span class="chunk assistant pending">
              {live}
              {waiting}
            </span>
          ) : null}
        </div>
      ) : (
        <>
          {s.turns.map((t) => (
            <TurnView
              key={t.id}
              turn={t}
              mode={s.mode}
              userName={s.userName}
              aiName={s.aiName}
              avatar={s.avatar}
              streaming={t.id === target}
              markdown={markdown}
            >
              {t.id === target ? live : undefined}
            </TurnView>
          ))}
          {target !== undefined && !continuing ? (
            <div class={`turn ${gen.role ?? 'assistant'} pending`}>
              <div class="turn-head">
                {s.avatar && gen.role !== 'user' ? <img class="avatar" src={s.avatar} alt="" /> : null}
                <strong>{pendingLabel(s.mode, gen.role, s.userName, gen.speaker ?? s.aiName)}</strong>
              </div>
              <div class="turn-text">
                {live}
                {waiting}
              </div>
            </div>
          ) : null}
        </>
      )}
    </div>
  );
}
