import { createHash } from 'node:crypto';

/**
 * A wire id (`chatcmpl-…`, `msg_…`) derived from the generation's server id, so a resumed stream repeats the id
 * its first connection saw and nothing of the server id itself is shown.
 */
export function derivedId(prefix: string, generationId: string): string {
  return `${prefix}${createHash('sha256').update(generationId).digest('base64url').slice(0, 24)}`;
}

/** A short stable hex digest of a few facts (Ollama's model digest, OpenAI's system fingerprint). */
export function factDigest(facts: string, length = 64): string {
  return createHash('sha256').update(facts).digest('hex').slice(0, length);
}
