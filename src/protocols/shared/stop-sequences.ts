/** Stop sequences arrive as a string, a list, or a list with nulls; all become a clean list. */
export function normalizeStopSequences(value: unknown): string[] {
  if (typeof value === 'string') return value ? [value] : [];
  if (!Array.isArray(value)) return [];
  return value.filter((item): item is string => typeof item === 'string' && item.length > 0);
}
