import { Component } from 'preact';
import type { Mode, Turn } from '../model/session.ts';
import { isNarration, proseText } from '../prompt/mode-switch.ts';
import { splitReasoning } from '../prompt/reasoning.ts';
import { deleteTurn, editTurn } from '../state/actions.ts';
import { MarkdownView } from './markdown-view.tsx';

export interface TurnViewProps {
  turn: Turn;
  mode: Mode;
  userName: string;
  aiName: string;
  avatar?: string | undefined;
  /** Render chat/instruct text as Markdown (story prose is always plain). */
  markdown: boolean;
  /** The reply currently streaming into this turn (continue): editing is blocked for it only. */
  streaming: boolean;
  /** Rendered after the text: the live continuation. */
  children?: preact.ComponentChildren;
}

interface State {
  editing: boolean;
}

function speaker(props: TurnViewProps): string {
  const { turn } = props;
  if (isNarration(turn)) return 'Story';
  if (props.mode === 'instruct') return turn.role === 'user' ? 'Instruction' : 'Response';
  return turn.name ?? (turn.role === 'user' ? props.userName : props.aiName);
}

/**
 * One turn, editable in place. It re-renders only when its own turn object changes (turns are immutable), so
 * adding a reply to a story of thousands of turns renders one new component, not the whole story.
 */
export class TurnView extends Component<TurnViewProps, State> {
  override state: State = { editing: false };

  override shouldComponentUpdate(next: TurnViewProps, nextState: State): boolean {
    const p = this.props;
    return (
      next.turn !== p.turn ||
      next.mode !== p.mode ||
      next.streaming !== p.streaming ||
      next.markdown !== p.markdown ||
      next.children !== p.children ||
      next.userName !== p.userName ||
      next.aiName !== p.aiName ||
      nextState.editing !== this.state.editing
    );
  }

  startEdit = (): void => {
    if (!this.props.streaming) this.setState({ editing: true });
  };

  commit = (text: string): void => {
    this.setState({ editing: false });
    editTurn(this.props.turn.id, text);
  };

  renderEditor() {
    return (
      <textarea
        class="turn-editor"
        ref={(el) => el?.focus()}
        value={this.props.turn.text}
        rows={Math.min(20, this.props.turn.text.split('\n').length + 1)}
        aria-label="Edit text"
        onBlur={(e) => this.commit(e.currentTarget.value)}
        onKeyDown={(e) => {
          if (e.key === 'Escape') this.setState({ editing: false });
          if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) e.currentTarget.blur();
        }}
      />
    );
  }

  /** A reply's <think> block is folded into a closed <details>; the answer follows as plain text. */
  renderText() {
    const { turn } = this.props;
    const split = turn.role === 'assistant' ? splitReasoning(turn.text) : undefined;
    const answer = split?.reasoning === undefined ? turn.text : split.answer;
    // A reply being continued stays plain so the streamed text lines up with it.
    const body = this.props.markdown && !this.props.streaming ? <MarkdownView text={answer} /> : answer;
    if (split?.reasoning === undefined) return body;
    return (
      <>
        <details class="think">
          <summary>{split.open ? 'Thinking (unfinished)' : 'Thinking'}</summary>
          {split.reasoning}
        </details>
        {body}
      </>
    );
  }

  override render() {
    const { turn, mode } = this.props;
    const error = turn.error ? (
      <div class="turn-error" role="alert" data-testid="turn-error">
        {turn.error}
      </div>
    ) : null;
    if (mode === 'story' || mode === 'adventure') {
      if (this.state.editing) return this.renderEditor();
      const text = proseText(turn, this.props.userName, mode);
      return (
        <>
          {/* biome-ignore lint/a11y/useSemanticElements: story chunks are inline runs of prose; a <button> would break the text flow */}
          <span
            class={`chunk ${turn.role}`}
            title="Click to edit"
            role="button"
            tabIndex={0}
            data-turn-id={turn.id}
            onClick={this.startEdit}
            onKeyDown={(e) => {
              if (e.key === 'Enter') this.startEdit();
            }}
          >
            {text}
            {this.props.children}
          </span>
          {error}
        </>
      );
    }
    return (
      <div class={`turn ${turn.role}${isNarration(turn) ? ' narration' : ''}`} data-turn-id={turn.id}>
        <div class="turn-head">
          {turn.role === 'assistant' && this.props.avatar ? (
            <img class="avatar" src={this.props.avatar} alt="" />
          ) : null}
          <strong>{speaker(this.props)}</strong>
          <span class="turn-tools">
            <button type="button" class="link" onClick={this.startEdit} disabled={this.props.streaming}>
              edit
            </button>
            <button type="button" class="link" onClick={() => deleteTurn(turn.id)} disabled={this.props.streaming}>
              delete
            </button>
          </span>
        </div>
        {this.state.editing ? (
          this.renderEditor()
        ) : (
          <div class="turn-text">
            {this.renderText()}
            {this.props.children}
          </div>
        )}
        {turn.stopReason && turn.stopReason !== 'stop' ? <div class="turn-meta">ended: {turn.stopReason}</div> : null}
        {error}
      </div>
    );
  }
}
