/**
 * Deterministic token text for the fake providers: the same seed always gives the same tokens, so a run
 * through a fault proxy can be compared with an uncut run. Some words are multibyte on purpose (accents,
 * CJK, an emoji outside the BMP) so that byte-level cuts and chunk splits land inside characters.
 */
const WORDS = [
  'the',
  'quiet',
  'kindling',
  'caught',
  'and',
  'a',
  'small',
  'flame',
  'rose',
  'over',
  'old',
  'pines',
  'café',
  'naïve',
  'señora',
  'über',
  '日本',
  '火',
  '🔥',
  'ember',
  'river',
  'stone',
  'wind',
  'lantern',
  'said',
  'she',
  'he',
  'they',
  'walked',
  'slowly',
  'toward',
  'home',
  '—',
  'yes,',
  'no.',
  '"well"',
];

/** mulberry32: tiny, fast, good enough for test data. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function seededTokens(seed: number, count: number): string[] {
  const random = seededRandom(seed);
  const tokens: string[] = [];
  for (let i = 0; i < count; i++) {
    const word = WORDS[Math.floor(random() * WORDS.length)] ?? 'x';
    // A newline now and then exercises multi-line text inside single-line JSON.
    tokens.push(random() < 0.05 ? `${word}\n` : `${word} `);
  }
  return tokens;
}

/** Python's `json.dumps` string encoding (ensure_ascii): KoboldCpp escapes every non-ASCII UTF-16 unit as \uXXXX. */
export function asciiJsonString(text: string): string {
  return JSON.stringify(text).replace(
    /[\u007f-\uffff]/g,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
