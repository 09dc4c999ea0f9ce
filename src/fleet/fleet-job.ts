import type { SamplingParams } from '../core/sampling-params.ts';
import { Generation, type SettledRequest } from '../scheduler/generation.ts';

/** What a node needs to run a generation another node took in: all of it but the live objects (quota, readers). */
interface JobData {
  id: string;
  createdAt: number;
  request: Omit<SettledRequest, 'sampling'> & { sampling: Omit<SamplingParams, 'logitBias'> };
  logitBias: Array<[number, number]>;
  promptTokens: readonly number[];
  maxTokens: number;
  truncatedTokens: number;
  principal: string;
  protocol: string;
  resumeWindowMs: number;
  fingerprint: string;
  seed: number;
}

/** A queued generation as the fleet's queue stores it (JSON; the logit bias map as entries). */
export function encodeJob(generation: Generation): string {
  const { logitBias, ...sampling } = generation.request.sampling;
  const data: JobData = {
    id: generation.id,
    createdAt: generation.createdAt,
    request: { ...generation.request, sampling },
    logitBias: [...logitBias],
    promptTokens: generation.promptTokens,
    maxTokens: generation.maxTokens,
    truncatedTokens: generation.truncatedTokens,
    principal: generation.origin.principal,
    protocol: generation.origin.protocol,
    resumeWindowMs: generation.resumeWindowMs,
    fingerprint: generation.fingerprint,
    seed: generation.seed,
  };
  return JSON.stringify(data, (_key, value) =>
    typeof value === 'number' && !Number.isFinite(value) ? { [NUMBER]: String(value) } : value,
  );
}

/** JSON has no Infinity (a banned token's bias is -Infinity): such a number travels as `{"#n": "-Infinity"}`. */
const NUMBER = '#n';

/**
 * The generation a peer fronts, rebuilt on the node that took it: the same id, key, request, seed and budget,
 * so its text is the text the front would have made, and every node finds it under the same names.
 */
export function decodeJob(json: string): Generation {
  const data = JSON.parse(json, (_key, value) =>
    value !== null && typeof value === 'object' && typeof value[NUMBER] === 'string' ? Number(value[NUMBER]) : value,
  ) as JobData;
  const request = { ...data.request, sampling: { ...data.request.sampling, logitBias: new Map(data.logitBias) } };
  const generation = new Generation(
    request,
    data.promptTokens,
    data.maxTokens,
    data.truncatedTokens,
    { principal: data.principal, protocol: data.protocol },
    data.resumeWindowMs,
    data.fingerprint,
    { id: data.id, createdAt: data.createdAt },
  );
  generation.seed = data.seed;
  return generation;
}

/** Prompt lengths at which a job and a slot's cache are compared (a match at a longer one counts for more). */
const PREFIX_LEVELS = [32, 128, 512, 2048];

/**
 * Hashes of a token list's prefixes at each level it reaches (`<level>:<fnv-1a>`): a job whose prompt begins
 * with what a free slot holds has a hash in common with it, which the queue's Lua compares as strings.
 */
export function prefixHashes(tokens: readonly number[]): string[] {
  const hashes: string[] = [];
  let hash = 0x811c9dc5;
  let level = 0;
  for (let i = 0; i < tokens.length && level < PREFIX_LEVELS.length; i++) {
    hash = Math.imul(hash ^ ((tokens[i] as number) & 0xffffffff), 0x01000193) >>> 0;
    if (i + 1 === PREFIX_LEVELS[level]) hashes.push(`${level++}:${hash.toString(36)}`);
  }
  return hashes;
}
