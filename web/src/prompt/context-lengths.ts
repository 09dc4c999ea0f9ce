// The lengths a generation really uses, from the session's settings and the server's context. A setting above
// what the server holds would only make the server cut the prompt itself, and a reply length near the whole
// context leaves the prompt a few tokens, so a chat forgets every earlier turn. Both are lowered here, with a
// note the Settings panel shows, and the stored settings are left alone: a larger server gets them back.

/** A reply may take at most this share of the context; the story or chat before it keeps the rest. */
export const MAX_LENGTH_SHARE = 0.5;

export interface LengthSettings {
  maxLength: number;
  maxContextLength: number;
}

export interface PlannedLengths extends LengthSettings {
  /** One sentence per lowered setting, for the Settings panel; empty when the settings are used as they are. */
  notes: string[];
}

export function planLengths(settings: LengthSettings, serverContext?: number): PlannedLengths {
  const notes: string[] = [];
  let maxContextLength = settings.maxContextLength;
  if (serverContext !== undefined && serverContext > 0 && serverContext < maxContextLength) {
    notes.push(
      `Context size: using ${serverContext} tokens, the server's whole context (the setting of ${maxContextLength} is more than it holds).`,
    );
    maxContextLength = serverContext;
  }
  let maxLength = settings.maxLength;
  const cap = Math.max(1, Math.floor(maxContextLength * MAX_LENGTH_SHARE));
  if (maxLength > cap) {
    notes.push(
      `Max length: using ${cap} tokens, half of the ${maxContextLength}-token context, so that the text before the reply keeps the other half (the setting is ${maxLength}).`,
    );
    maxLength = cap;
  }
  return { maxLength, maxContextLength, notes };
}
