import { KindlingError } from '../../core/kindling-error.ts';
import { SAMPLING_LIMITS } from '../../core/sampling-limits.ts';

/**
 * Stop sequences arrive as a string, a list, or a list with nulls (skipped, as KoboldCpp does); all become a clean
 * list. Anything else, more than 256 of them, or one longer than 500 characters is a 400 naming `field`.
 */
export function normalizeStopSequences(value: unknown, field = 'stop'): string[] {
  if (value === undefined || value === null) return [];
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list)) throw KindlingError.badInput(field, 'expected a string or a list of strings');
  const { stopStrings, stopStringLength } = SAMPLING_LIMITS;
  if (list.length > stopStrings)
    throw KindlingError.badInput(field, `${list.length} stop strings; at most ${stopStrings}`);
  const out: string[] = [];
  for (const [i, item] of list.entries()) {
    if (item === null || item === '') continue;
    if (typeof item !== 'string') throw KindlingError.badInput(`${field}[${i}]`, 'expected a string');
    if (item.length > stopStringLength)
      throw KindlingError.badInput(`${field}[${i}]`, `${item.length} characters; at most ${stopStringLength}`);
    out.push(item);
  }
  return out;
}
