import { createSession, createWorldInfoEntry, type Mode, newId, type Session, type Turn } from '../model/session.ts';

// KoboldAI Lite / KoboldAI United save files. Lite keeps the story as flat strings with {{[INPUT]}} and
// {{[OUTPUT]}} markers in instruct mode and "Name: text" lines in chat mode; we turn them back into turns.

type Json = Record<string, unknown>;

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const list = (v: unknown): string[] =>
  str(v)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);

export function isLiteSave(data: unknown): data is Json {
  if (typeof data !== 'object' || data === null) return false;
  const d = data as Json;
  return 'prompt' in d && ('actions' in d || 'memory' in d || 'worldinfo' in d);
}

function actionTexts(actions: unknown): string[] {
  if (Array.isArray(actions)) return actions.map(str);
  // KoboldAI United stores actions as {"0": {"Selected Text": ...}} objects.
  if (typeof actions === 'object' && actions !== null) {
    return Object.values(actions as Json).map((a) =>
      typeof a === 'object' && a !== null ? str((a as Json)['Selected Text']) : str(a),
    );
  }
  return [];
}

const opmodes: Record<number, Mode> = { 1: 'story', 2: 'adventure', 3: 'chat', 4: 'instruct' };

function splitInstruct(text: string): { preamble: string; turns: Turn[] } {
  const parts = text.split(/(\{\{\[INPUT\]\}\}|\{\{\[OUTPUT\]\}\})/);
  let preamble = '';
  const turns: Turn[] = [];
  let role: Turn['role'] | undefined;
  for (const part of parts) {
    if (part === '{{[INPUT]}}') role = 'user';
    else if (part === '{{[OUTPUT]}}') role = 'assistant';
    else if (role === undefined) preamble += part;
    else if (part.trim().length > 0) turns.push({ id: newId(), role, text: part.trim() });
  }
  return { preamble, turns };
}

function splitChat(text: string, userName: string, aiNames: string[]): { preamble: string; turns: Turn[] } {
  const names = [userName, ...aiNames].filter((n) => n.length > 0);
  let preamble = '';
  const turns: Turn[] = [];
  for (const line of text.split('\n')) {
    const speaker = names.find((n) => line.startsWith(`${n}:`));
    if (speaker !== undefined) {
      const role = speaker === userName ? 'user' : 'assistant';
      const turn: Turn = { id: newId(), role, text: line.slice(speaker.length + 1).trim() };
      if (role === 'assistant' && aiNames.length > 1) turn.name = speaker;
      turns.push(turn);
    } else if (turns.length > 0) {
      const last = turns[turns.length - 1]!;
      last.text = last.text.length > 0 ? `${last.text}\n${line}` : line;
    } else {
      preamble += `${line}\n`;
    }
  }
  for (const t of turns) t.text = t.text.trimEnd();
  return { preamble: preamble.trim(), turns };
}

export function importLiteSave(data: Json, fileName = 'Imported story'): Session {
  const settings = (
    typeof data.savedsettings === 'object' && data.savedsettings !== null ? data.savedsettings : {}
  ) as Json;
  const mode = opmodes[Number(settings.opmode)] ?? 'story';
  const userName = str(settings.chatname) || 'You';
  const aiNames = str(settings.chatopponent)
    .split('||$||')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  const prompt = str(data.prompt);
  const actions = actionTexts(data.actions);
  let memory = str(data.memory);

  let turns: Turn[];
  if (mode === 'instruct' || mode === 'chat') {
    const whole = prompt + actions.join('');
    const split =
      mode === 'instruct' ? splitInstruct(whole) : splitChat(whole, userName, aiNames.length > 0 ? aiNames : ['AI']);
    if (split.preamble.trim().length > 0) memory = [memory.trim(), split.preamble.trim()].filter(Boolean).join('\n');
    turns = split.turns;
  } else {
    turns = [];
    if (prompt.length > 0) turns.push({ id: newId(), role: 'user', text: prompt, action: 'story' });
    for (const a of actions) if (a.length > 0) turns.push({ id: newId(), role: 'assistant', text: a });
  }

  const worldInfo = (Array.isArray(data.worldinfo) ? data.worldinfo : [])
    .filter((w): w is Json => typeof w === 'object' && w !== null)
    .map((w) =>
      createWorldInfoEntry({
        keys: list(w.key),
        secondaryKeys: list(w.keysecondary),
        antiKeys: list(w.keyanti),
        content: str(w.content),
        comment: str(w.comment),
        selective: w.selective === true,
        constant: w.constant === true,
        probability: typeof w.probability === 'number' ? w.probability : 100,
        disabled: w.widisabled === true,
      }),
    );

  const session = createSession({
    name: fileName.replace(/\.(json|txt)$/i, ''),
    mode,
    turns,
    memory,
    authorsNote: str(data.authorsnote),
    worldInfo,
    userName,
    aiName: aiNames[0] ?? 'AI',
    otherAiNames: aiNames.slice(1),
  });
  const template = str(data.anotetemplate);
  if (template.length > 0) session.authorsNoteTemplate = template;
  return session;
}
