import { createSession, createWorldInfoEntry, newId, type Session } from '../model/session.ts';

// Tavern character cards: chara_card_v2 / v3 JSON, v1 flat JSON, and PNGs carrying the JSON base64-encoded in a
// tEXt/iTXt chunk named "chara" (v2) or "ccv3" (v3; preferred when both are present).

type Json = Record<string, unknown>;
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

const pngSignature = [137, 80, 78, 71, 13, 10, 26, 10];

export function isPng(bytes: Uint8Array): boolean {
  return pngSignature.every((b, i) => bytes[i] === b);
}

/** Text chunks of a PNG keyed by keyword; compressed iTXt is skipped (cards never use it). */
export function pngTextChunks(bytes: Uint8Array): Map<string, string> {
  const chunks = new Map<string, string>();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const latin1 = new TextDecoder('latin1');
  const utf8 = new TextDecoder();
  let pos = 8;
  while (pos + 12 <= bytes.length) {
    const length = view.getUint32(pos);
    const type = latin1.decode(bytes.subarray(pos + 4, pos + 8));
    const data = bytes.subarray(pos + 8, pos + 8 + length);
    if (type === 'tEXt' || type === 'iTXt') {
      const nul = data.indexOf(0);
      if (nul > 0) {
        const keyword = latin1.decode(data.subarray(0, nul));
        if (type === 'tEXt') chunks.set(keyword, latin1.decode(data.subarray(nul + 1)));
        else if (data[nul + 1] === 0) {
          // iTXt: keyword\0 compressionFlag compressionMethod languageTag\0 translatedKeyword\0 text
          let p = nul + 3;
          p = data.indexOf(0, p) + 1;
          p = data.indexOf(0, p) + 1;
          if (p > 0) chunks.set(keyword, utf8.decode(data.subarray(p)));
        }
      }
    }
    if (type === 'IEND') break;
    pos += 12 + length;
  }
  return chunks;
}

function base64ToUtf8(b64: string): string {
  const binary = atob(b64.trim());
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return new TextDecoder().decode(bytes);
}

export function bytesToDataUrl(bytes: Uint8Array, mime: string): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return `data:${mime};base64,${btoa(binary)}`;
}

export function cardJsonFromPng(bytes: Uint8Array): Json {
  const chunks = pngTextChunks(bytes);
  const encoded = chunks.get('ccv3') ?? chunks.get('chara');
  if (encoded === undefined) throw new Error('This PNG has no character card data (no "chara" or "ccv3" text chunk).');
  return JSON.parse(base64ToUtf8(encoded)) as Json;
}

export function isTavernCard(data: unknown): data is Json {
  if (typeof data !== 'object' || data === null) return false;
  const d = data as Json;
  return d.spec === 'chara_card_v2' || d.spec === 'chara_card_v3' || (typeof d.name === 'string' && 'first_mes' in d);
}

export function importTavernCard(card: Json, avatar?: string): Session {
  const data = (typeof card.data === 'object' && card.data !== null ? card.data : card) as Json;
  const name = str(data.name) || 'Character';
  const userName = 'You';
  // Cards write {{char}}/{{user}} (and the older <BOT>/<USER>); resolve them once, at import.
  const fill = (text: unknown): string =>
    str(text)
      .replace(/\{\{char\}\}|<BOT>/gi, name)
      .replace(/\{\{user\}\}|<USER>/gi, userName)
      .trim();

  const personality = fill(data.personality);
  const scenario = fill(data.scenario);
  const memory = [
    fill(data.description),
    personality && `${name}'s personality: ${personality}`,
    scenario && `Scenario: ${scenario}`,
    fill(data.mes_example),
  ]
    .filter((s) => s.length > 0)
    .join('\n');

  const book = (
    typeof data.character_book === 'object' && data.character_book !== null ? data.character_book : {}
  ) as Json;
  const entries = Array.isArray(book.entries) ? book.entries : [];
  const worldInfo = entries
    .filter((e): e is Json => typeof e === 'object' && e !== null)
    .map((e) =>
      createWorldInfoEntry({
        keys: Array.isArray(e.keys) ? e.keys.map(str) : [],
        secondaryKeys: Array.isArray(e.secondary_keys) ? e.secondary_keys.map(str) : [],
        content: fill(e.content),
        comment: str(e.comment) || str(e.name),
        constant: e.constant === true,
        selective: e.selective === true,
        caseSensitive: e.case_sensitive === true,
        disabled: e.enabled === false,
      }),
    );

  const greeting = fill(data.first_mes);
  const session = createSession({
    name,
    mode: 'chat',
    aiName: name,
    userName,
    memory,
    worldInfo,
    turns: greeting.length > 0 ? [{ id: newId(), role: 'assistant', text: greeting }] : [],
  });
  session.instruct.systemPrompt = fill(data.system_prompt);
  if (avatar !== undefined) session.avatar = avatar;
  return session;
}

export function importTavernPng(bytes: Uint8Array): Session {
  return importTavernCard(cardJsonFromPng(bytes), bytesToDataUrl(bytes, 'image/png'));
}
