import { createHash } from 'node:crypto';
import type { GenerationRequest } from '../core/generation-request.ts';

/**
 * A hash of everything that decides a request's output (prompt, memory, sampling, limits, stops), but not
 * its key or disconnect policy. Two requests with the same fingerprint are "the same request": a client
 * that re-sends one after a cut reattaches to its generation instead of starting another.
 */
export function requestFingerprint(request: GenerationRequest): string {
  const { key: _key, abortOnDisconnect: _abort, prompt, memory, ...decided } = request;
  // The texts go to the hash as they are, length-prefixed: escaping a 31 MB prompt into JSON first cost ~0.3 s.
  return createHash('sha256')
    .update(canonical(decided))
    .update(`\0${prompt.length}:`)
    .update(prompt)
    .update(`\0${memory.length}:`)
    .update(memory)
    .digest('base64url');
}

/** JSON with sorted keys, Maps as sorted entry lists and non-finite numbers spelled out. */
function canonical(value: unknown): string {
  if (value instanceof Map)
    return canonical([...value.entries()].sort(([a], [b]) => (String(a) < String(b) ? -1 : a === b ? 0 : 1)));
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : `"${value}"`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return value === undefined ? 'null' : JSON.stringify(value);
}
