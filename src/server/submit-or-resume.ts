import type { GenerationRequest } from '../core/generation-request.ts';
import type { KindlingError } from '../core/kindling-error.ts';
import { FLEET_WRITE_WINDOW_MS, type FleetLog } from '../fleet/fleet-log.ts';
import { keyHeldElsewhere } from '../fleet/fleet-record.ts';
import type { RemoteGeneration } from '../fleet/remote-generation.ts';
import type { Generation, GenerationOrigin } from '../scheduler/generation.ts';
import { requestFingerprint } from '../scheduler/request-fingerprint.ts';
import type { Scheduler } from '../scheduler/scheduler.ts';
import { lookupLimiter } from './lookup-rate-limit.ts';

export interface StreamTarget {
  generation: Generation;
  afterId: number;
  /** It reattached to a generation an earlier request started. */
  resumed: boolean;
  /** The generation runs on another fleet node: its log is followed from Redis (remote-generation.ts). */
  remote?: true;
}

/**
 * Which generation a keyed streaming request reads. The key is looked up for the request's principal
 * (its own keys, or any generation's server id), and only a generation of the same protocol is ever
 * replayed:
 * - with `Last-Event-ID`, the events after that id are replayed and the live stream follows;
 * - without it, the *same* request (same decoded body) re-sent after a cut is replayed from the start, while
 *   its generation runs, or after it ended as long as no reader was handed its end;
 * - anything else submits a new generation (a live key is then a 409 from the scheduler).
 * A `Last-Event-ID` lookup that finds nothing costs a token of the principal's lookup rate limit.
 */
export async function submitOrResume(
  scheduler: Scheduler,
  request: GenerationRequest,
  lastEventId: number | undefined,
  origin: GenerationOrigin,
  fleet?: FleetLog,
): Promise<StreamTarget> {
  if (request.key) {
    const existing = scheduler.find(origin.principal, request.key);
    if (!existing && fleet) {
      const remote = await fleet.find(origin.principal, request.key);
      const target = remote && (await remoteTarget(remote, request, lastEventId, origin));
      if (target) return target;
    }
    if (existing && existing.origin.protocol === origin.protocol) {
      if (lastEventId !== undefined)
        return { generation: existing, afterId: resumePoint(existing, lastEventId), resumed: true };
      const sameRequest = existing.fingerprint === requestFingerprint(request);
      if (sameRequest && (existing.status !== 'done' || !existing.endDelivered))
        return { generation: existing, afterId: 0, resumed: true };
    } else if (lastEventId !== undefined) {
      lookupLimiter(scheduler).miss(origin.principal);
    }
  }
  // A local resume above needs no Redis; a new generation on a fleet node does (its log is the fleet's).
  fleet?.assertReachable();
  return { generation: await scheduler.submit(request, origin), afterId: 0, resumed: false };
}

/**
 * A keyed stream whose generation another fleet node runs: resumed from Redis by the same rules as a local one
 * (Last-Event-ID, or the same request re-sent while it runs); any other request with its live key is the 409 the
 * owner would give, so one key never runs twice in the fleet. A key whose generation ended is free again: the
 * request runs here (undefined).
 */
async function remoteTarget(
  remote: RemoteGeneration,
  request: GenerationRequest,
  lastEventId: number | undefined,
  origin: GenerationOrigin,
): Promise<StreamTarget | undefined> {
  const sameProtocol = remote.protocol === origin.protocol;
  const sameRequest = remote.fingerprint === requestFingerprint(request) && !remote.log.ended;
  if (sameProtocol && (lastEventId !== undefined || sameRequest)) {
    void remote.follow();
    if (lastEventId !== undefined) await reached(remote, lastEventId);
    const afterId = lastEventId === undefined ? 0 : resumePoint(remote, lastEventId);
    // The stream writer uses only what a RemoteGeneration offers of a Generation (id, log, attachReader,
    // endDelivered); the `satisfies` keeps that true as either side changes.
    const source = remote satisfies Pick<Generation, 'id' | 'log' | 'attachReader' | 'endDelivered'>;
    return { generation: source as unknown as Generation, afterId, resumed: true, remote: true };
  }
  if (remote.log.ended) return undefined;
  throw remoteConflict(remote, request.key ?? '');
}

/**
 * The owner writes text to Redis up to `FLEET_WRITE_WINDOW_MS` after it sent it, so a client cut there may name
 * an id Redis does not have yet: it is waited for (a few windows), rather than taken for a made-up id and
 * replayed from the start.
 */
async function reached(remote: RemoteGeneration, lastEventId: number): Promise<void> {
  const deadline = performance.now() + 5 * FLEET_WRITE_WINDOW_MS;
  while (remote.log.lastId < lastEventId && !remote.log.ended && performance.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 5));
}

/** The scheduler's 409 for a live key, for a generation on another node. */
export function remoteConflict(remote: RemoteGeneration, key: string): KindlingError {
  return keyHeldElsewhere(key, remote.node);
}

/**
 * Where a stream with `Last-Event-ID: afterId` starts. An id past the log's end was never sent for this
 * generation (a stale id of an earlier one, or a made-up one), so the stream replays from the start; a
 * client that saw the final event of a finished generation gets the final event again. Either way every
 * stream ends with its final event, never with an empty 200.
 */
function resumePoint(generation: Pick<Generation, 'log'>, afterId: number): number {
  const lastId = generation.log.lastId;
  if (afterId > lastId) return 0;
  if (generation.log.ended && afterId >= lastId) return lastId - 1;
  return afterId;
}
