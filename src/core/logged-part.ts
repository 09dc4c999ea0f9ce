import type { StreamPart } from './stream-part.ts';

/**
 * A part with its id: ids start at 1 and increase by one per part, so `Last-Event-ID` resumes exactly (a part
 * that becomes several SSE events numbers them with fractions below its id, see part-event-ids.ts). Protocol
 * encoders receive batches of these.
 */
export interface LoggedPart {
  id: number;
  part: StreamPart;
}
