import type { GenerationRequest } from '../core/generation-request.ts';
import type { Generation } from '../scheduler/generation.ts';
import type { Scheduler } from '../scheduler/scheduler.ts';

export interface StreamTarget {
  generation: Generation;
  afterId: number;
  resumed: boolean;
}

/**
 * A streaming request with a key and `Last-Event-ID` that names a known generation reattaches to it:
 * the events after that id are replayed and the live stream follows, with no new generation. Anything
 * else submits a new generation (a live duplicate key is a 409 from the scheduler).
 */
export function submitOrResume(
  scheduler: Scheduler,
  request: GenerationRequest,
  lastEventId: number | undefined,
): StreamTarget {
  if (lastEventId !== undefined && request.key) {
    const existing = scheduler.find(request.key);
    if (existing) return { generation: existing, afterId: lastEventId, resumed: true };
  }
  return { generation: scheduler.submit(request), afterId: 0, resumed: false };
}
