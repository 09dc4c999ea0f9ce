import { infoRoute, type ProtocolRoute, type RouteInput } from '../../core/protocol.ts';
import type { FoundGeneration, ProtocolServices } from '../../core/protocol-services.ts';
import { generationLogprobs } from '../common/generation-logprobs.ts';
import { clientKey } from '../common/stream-key.ts';
import { encodeKoboldLogprobs } from './encode-response.ts';
import { koboldFinishReason } from './finish-reason.ts';
import { GenkeyBody } from './wire.ts';

type Keyed = { genkey?: string } | undefined;

/** KoboldCpp's `{"results":[{"text"}]}` plus what a client needs to switch between polling and streaming. */
function checkBody(found: FoundGeneration | undefined) {
  if (!found)
    return { results: [{ text: '', status: 'unknown', last_event_id: '0', queue_position: 0, finish_reason: null }] };
  const { generation } = found;
  const reason = generation.stopReason;
  return {
    results: [
      {
        text: generation.log.text,
        status: generation.status,
        last_event_id: String(generation.log.lastId),
        queue_position: found.queuePosition,
        finish_reason: reason ? koboldFinishReason(reason) : null,
      },
    ],
  };
}

/**
 * Check, abort and last_logprobs. A key names one of the caller's own generations (its genkey, or a server id);
 * without a key, the caller's own last key-less generation (KoboldCpp's single-user view, per principal).
 */
export function koboldLookupRoutes(services: ProtocolServices): ProtocolRoute[] {
  const { generations } = services;
  const find = (input: RouteInput<Keyed>, fromBody: boolean) =>
    generations.lookup(input.principal, fromBody ? clientKey('genkey', input.body?.genkey) : undefined);
  const check = async (input: RouteInput<Keyed>, fromBody: boolean) => {
    const key = fromBody ? clientKey('genkey', input.body?.genkey) : undefined;
    // A fleet node also finds a generation another node runs; a single node stays in-process.
    const found = generations.lookupAnywhere
      ? await generations.lookupAnywhere(input.principal, key)
      : generations.lookup(input.principal, key);
    found?.touch();
    return checkBody(found);
  };
  const lastLogprobs = (input: RouteInput<Keyed>, fromBody: boolean) => {
    const generation = find(input, fromBody)?.generation;
    return { logprobs: generation?.request.logprobs ? encodeKoboldLogprobs(generationLogprobs(generation)) : null };
  };
  const keyed = { body: GenkeyBody, lenientBody: true } as const;
  return [
    infoRoute<Keyed>({
      method: 'GET',
      paths: ['/api/extra/generate/check'],
      summary: 'Text generated so far by your last key-less generation',
      handle: (input) => check(input, false),
    }),
    infoRoute<Keyed>({
      method: 'POST',
      paths: ['/api/extra/generate/check'],
      summary: 'Text generated so far, status and last event id of one of your generations by genkey',
      ...keyed,
      handle: (input) => check(input, true),
    }),
    infoRoute<Keyed>({
      method: 'POST',
      paths: ['/api/extra/abort'],
      summary: 'Abort one of your generations by genkey (without a key: your last key-less one, while it runs)',
      ...keyed,
      handle: async ({ principal, body }) => {
        const key = clientKey('genkey', body?.genkey);
        const done = generations.abortAnywhere
          ? await generations.abortAnywhere(principal, key)
          : generations.abort(principal, key);
        return { success: done ? 'true' : 'false', done: done ? 'true' : 'false' };
      },
    }),
    infoRoute<Keyed>({
      method: 'GET',
      paths: ['/api/extra/last_logprobs'],
      summary: 'Logprobs of your last key-less generation',
      handle: (input) => lastLogprobs(input, false),
    }),
    infoRoute<Keyed>({
      method: 'POST',
      paths: ['/api/extra/last_logprobs'],
      summary: 'Logprobs of a generation by genkey (requested with logprobs: true)',
      ...keyed,
      handle: (input) => lastLogprobs(input, true),
    }),
  ];
}
