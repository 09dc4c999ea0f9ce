/**
 * The name a principal goes by in metrics and logs: an API key's name (`key:alice` → `alice`), else `anonymous`.
 * Never the key itself, and never a client address as a metric label (one series per address would grow without
 * bound); logs carry the address in their own field.
 */
export function keyNameOf(principal: string): string {
  return principal.startsWith('key:') ? principal.slice(4) : 'anonymous';
}
