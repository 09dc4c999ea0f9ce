// The session document: everything a user writes, kept as structured turns (never as text with control
// markers inside it, unlike Lite's {{[INPUT]}} tags). Pure data, no DOM, so prompt building can run in Node.

export type Mode = 'story' | 'chat' | 'instruct' | 'adventure';

export type TurnRole = 'user' | 'assistant';

/** Adventure actions: "do" is written as `> You <action>`, "say" as `> You say "<text>"`, story as plain text. */
export type ActionKind = 'do' | 'say' | 'story';

export interface Turn {
  id: string;
  role: TurnRole;
  /** Speaker name in chat mode; the user or AI name is used when absent. */
  name?: string;
  text: string;
  action?: ActionKind;
  /** Set on a reply that ended badly (provider error, stop pressed, interrupted by a reload); undefined clears it. */
  error?: string | undefined;
  stopReason?: string | undefined;
  /** Every version Retry produced for this reply ("swipes"); `text` is `variants[variantIndex]`. */
  variants?: string[];
  variantIndex?: number;
  /**
   * Set when a chat or instruct turn became part of a story (mode change): the newline put before it so it
   * starts its own line. Going back takes it off and keeps the turn apart from the narration.
   */
  storySeparator?: string;
}

export interface WorldInfoEntry {
  id: string;
  /** Comma separated in the UI; any one triggers the entry. */
  keys: string[];
  /** When `selective`, at least one of these must also appear. */
  secondaryKeys: string[];
  /** If any of these appears the entry is suppressed. */
  antiKeys: string[];
  content: string;
  comment: string;
  constant: boolean;
  selective: boolean;
  /** 0–100; entries below 100 trigger with that chance. */
  probability: number;
  caseSensitive: boolean;
  disabled: boolean;
}

export interface Samplers {
  temperature: number;
  top_p: number;
  top_k: number;
  min_p: number;
  rep_pen: number;
  rep_pen_range: number;
  dry_multiplier: number;
  dry_base: number;
  dry_allowed_length: number;
  xtc_threshold: number;
  xtc_probability: number;
  /** -1 = random. */
  seed: number;
}

export interface InstructSettings {
  preset: string;
  systemPrompt: string;
  /** Used when preset is "custom". */
  custom: InstructTags;
}

export interface InstructTags {
  systemStart: string;
  systemEnd: string;
  userStart: string;
  userEnd: string;
  assistantStart: string;
  assistantEnd: string;
}

export interface GenSettings {
  maxLength: number;
  maxContextLength: number;
  samplers: Samplers;
  samplerPreset: string;
  stopSequences: string[];
  /** Never let the model end its reply early (Kobold `ban_eos_token`, Lite's "EOS token ban"). Absent in older saves. */
  banEos?: boolean;
}

export interface Session {
  id: string;
  name: string;
  createdAt: number;
  updatedAt: number;
  /** Bumped on every save; a save whose base revision is stale is stored as a copy, never over newer work. */
  rev: number;
  mode: Mode;
  turns: Turn[];
  memory: string;
  authorsNote: string;
  /** Turns (story mode: lines) from the end before which the author's note goes; 0 = right before the reply. */
  authorsNoteDepth: number;
  authorsNoteTemplate: string;
  worldInfo: WorldInfoEntry[];
  userName: string;
  aiName: string;
  /** Further AI characters of a group chat; they take turns with `aiName` in list order. */
  otherAiNames?: string[];
  /** data: URL of an imported character's avatar. */
  avatar?: string;
  instruct: InstructSettings;
  gen: GenSettings;
}

export const defaultSamplers: Samplers = {
  temperature: 0.7,
  top_p: 0.92,
  top_k: 100,
  min_p: 0,
  rep_pen: 1.07,
  rep_pen_range: 360,
  dry_multiplier: 0,
  dry_base: 1.75,
  dry_allowed_length: 2,
  xtc_threshold: 0.1,
  xtc_probability: 0,
  seed: -1,
};

let idCounter = 0;
/** Ids only need to be unique within one browser; crypto.randomUUID is absent on plain-http LAN origins. */
export function newId(prefix = 't'): string {
  idCounter += 1;
  return `${prefix}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}${idCounter.toString(36)}`;
}

export function createSession(init: Partial<Session> = {}): Session {
  const now = Date.now();
  return {
    id: newId('s'),
    name: 'Untitled',
    createdAt: now,
    updatedAt: now,
    rev: 0,
    mode: 'story',
    turns: [],
    memory: '',
    authorsNote: '',
    authorsNoteDepth: 3,
    authorsNoteTemplate: "[Author's note: <|>]",
    worldInfo: [],
    userName: 'You',
    aiName: 'AI',
    instruct: {
      preset: 'chatml',
      systemPrompt: '',
      custom: {
        systemStart: '',
        systemEnd: '\n',
        userStart: '### Input:\n',
        userEnd: '\n',
        assistantStart: '### Response:\n',
        assistantEnd: '\n',
      },
    },
    gen: {
      maxLength: 200,
      maxContextLength: 4096,
      samplers: { ...defaultSamplers },
      samplerPreset: 'balanced',
      stopSequences: [],
    },
    ...init,
  };
}

export function createWorldInfoEntry(init: Partial<WorldInfoEntry> = {}): WorldInfoEntry {
  return {
    id: newId('w'),
    keys: [],
    secondaryKeys: [],
    antiKeys: [],
    content: '',
    comment: '',
    constant: false,
    selective: false,
    probability: 100,
    caseSensitive: false,
    disabled: false,
    ...init,
  };
}
