import type { Session } from '../model/session.ts';

// Group chat: several AI characters answer in turn. The next one is the character after whoever spoke last,
// so two characters alternate and a user message never resets the order.

export function chatSpeakers(session: Session): string[] {
  const others = (session.otherAiNames ?? []).map((n) => n.trim()).filter((n) => n.length > 0 && n !== session.aiName);
  return [session.aiName, ...new Set(others)];
}

export function nextSpeaker(session: Session): string {
  const speakers = chatSpeakers(session);
  if (speakers.length === 1) return session.aiName;
  const lastAi = session.turns.findLast((t) => t.role === 'assistant');
  if (lastAi === undefined) return speakers[0]!;
  const index = speakers.indexOf(lastAi.name ?? session.aiName);
  return speakers[(index + 1) % speakers.length]!;
}
