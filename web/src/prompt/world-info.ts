import type { WorldInfoEntry } from '../model/session.ts';

export interface WorldInfoOptions {
  /** Injected so tests (and the "view prompt" preview) are deterministic. */
  random?: (() => number) | undefined;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * A key matches on word boundaries where the key itself starts/ends with a word character, so "cat" does not
 * fire on "concatenate" but "Dr." still matches. Keys written as /regex/flags are used as regular expressions.
 */
export function keyMatches(text: string, key: string, caseSensitive: boolean): boolean {
  const k = key.trim();
  if (k.length === 0) return false;
  const regexKey = /^\/(.+)\/([a-z]*)$/.exec(k);
  if (regexKey) {
    try {
      return new RegExp(regexKey[1]!, regexKey[2]).test(text);
    } catch {
      return false;
    }
  }
  const start = /^\w/.test(k) ? '(?<![\\w])' : '';
  const end = /\w$/.test(k) ? '(?![\\w])' : '';
  return new RegExp(`${start}${escapeRegExp(k)}${end}`, caseSensitive ? 'u' : 'iu').test(text);
}

function anyKey(text: string, keys: string[], caseSensitive: boolean): boolean {
  return keys.some((key) => keyMatches(text, key, caseSensitive));
}

/**
 * Entries whose keys appear in the scanned text (recent story plus the pending input), in their list order.
 * Constant entries are always in; anti-keys veto; selective entries also need a secondary key.
 */
export function activeWorldInfo(
  entries: readonly WorldInfoEntry[],
  scanText: string,
  options: WorldInfoOptions = {},
): WorldInfoEntry[] {
  const random = options.random ?? Math.random;
  return entries.filter((entry) => {
    if (entry.disabled || entry.content.trim().length === 0) return false;
    if (!entry.constant) {
      if (!anyKey(scanText, entry.keys, entry.caseSensitive)) return false;
      if (entry.selective && !anyKey(scanText, entry.secondaryKeys, entry.caseSensitive)) return false;
    }
    if (anyKey(scanText, entry.antiKeys, entry.caseSensitive)) return false;
    if (entry.probability < 100 && random() * 100 >= entry.probability) return false;
    return true;
  });
}
