import { computed, signal } from '@preact/signals';
import { createSession, type Session } from '../model/session.ts';
import { emptyHistory, type UndoHistory } from './undo-history.ts';

// All UI state lives in these signals. Components read them; only `actions.ts` (user intent) and the
// generation runner (network results) write them. Network code never touches the DOM.

export const session = signal<Session>(createSession());
export const undoHistory = signal<UndoHistory>(emptyHistory());
export const canUndo = computed(() => undoHistory.value.past.length > 0);
export const canRedo = computed(() => undoHistory.value.future.length > 0);

export interface SessionMeta {
  id: string;
  name: string;
  mode: Session['mode'];
  updatedAt: number;
  turns: number;
}
export const sessionList = signal<SessionMeta[]>([]);

export type GenerationPhase = 'idle' | 'sending' | 'streaming';
export interface GenerationState {
  phase: GenerationPhase;
  /** Turn receiving the text: a new reply, or the reply being continued. */
  targetId?: string;
  /** Provider-side status shown while waiting: queued, processing, reconnecting. */
  status?: string;
  /** "user" while impersonating: the text is the user's next message, headed for the input box. */
  role?: 'assistant' | 'user';
  /** Group chat: the character the pending reply is written as. */
  speaker?: string;
}
export const generation = signal<GenerationState>({ phase: 'idle' });
export const isGenerating = computed(() => generation.value.phase !== 'idle');

export interface GenerationStats {
  startedAt: number;
  firstTokenMs?: number;
  elapsedMs: number;
  /** Streamed chunks received (providers send about one token per chunk); replaced by usage when reported. */
  tokens: number;
  promptTokens?: number | undefined;
  /** Undefined until enough of the reply streamed for a meaningful rate. */
  tokensPerSecond?: number | undefined;
  stopReason?: string;
  /** Budget used by the prompt, shown as "prompt n / budget". */
  budget?: number;
  trimmedChars?: number;
  exactCount?: boolean;
}
export const stats = signal<GenerationStats | undefined>(undefined);

export interface Notice {
  kind: 'error' | 'info';
  text: string;
}
export const notice = signal<Notice | undefined>(undefined);

/** The last request sent, for the "view final prompt" inspector. */
export const lastRequest = signal<{ prompt: string; body: unknown; events?: string[] } | undefined>(undefined);

/** The input box's text; impersonation writes into it. */
export const composerText = signal('');

export type PanelTab = 'connect' | 'settings' | 'context' | 'sessions';
export const panelTab = signal<PanelTab>('connect');
