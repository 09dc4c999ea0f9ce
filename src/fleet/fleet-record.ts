import { KindlingError } from '../core/kindling-error.ts';
import type { Generation } from '../scheduler/generation.ts';
import type { FleetRecord } from './remote-generation.ts';

/** A generation's record as this node writes it (remote-generation.ts reads it back as a FleetRecord). */
export function recordFields(generation: Generation, nodeId: string): Record<string, string> {
  return {
    node: nodeId,
    id: generation.id,
    protocol: generation.origin.protocol,
    createdAt: String(generation.createdAt),
    promptTokens: JSON.stringify(generation.promptTokens),
    logprobs: String(generation.request.logprobs ?? 0),
    fingerprint: generation.fingerprint,
    resumeWindowMs: String(generation.resumeWindowMs),
  };
}

/** The 409 for a client key that a generation queued or running on another live node holds. */
export function keyHeldElsewhere(key: string, node: string): KindlingError {
  return new KindlingError(
    'conflict',
    `A generation with key "${key}" is still running on fleet node ${node}; resume it with Last-Event-ID (or re-send the same request through the protocol that started it), or use a new key.`,
  );
}

/** A record as Redis holds it, read back. */
export function recordOf(fields: Record<string, string>): FleetRecord {
  const status = fields['status'];
  return {
    node: fields['node'] ?? '',
    id: fields['id'] ?? '',
    protocol: fields['protocol'] ?? '',
    status: status === 'running' || status === 'done' ? status : 'queued',
    createdAt: Number(fields['createdAt'] ?? 0),
    promptTokens: JSON.parse(fields['promptTokens'] ?? '[]') as number[],
    logprobs: Number(fields['logprobs'] ?? 0),
    fingerprint: fields['fingerprint'] ?? '',
    resumeWindowMs: Number(fields['resumeWindowMs'] ?? 10_000),
  };
}
