import { Type } from 'typebox';

/** The longest pace a client may ask for: past it a stream would look dead to proxies and to heartbeat checks. */
export const STREAM_INTERVAL_MAX_MS = 10_000;

/** `stream_interval_ms` on the Kobold and OpenAI stream bodies: the client's pace (docs/architecture.md). */
export const StreamIntervalField = Type.Optional(
  Type.Integer({
    minimum: 0,
    maximum: STREAM_INTERVAL_MAX_MS,
    description: `Streams only: at most one event per this many milliseconds; tokens that arrive meanwhile come together in the next event (0, the default: as fast as the reader takes them). At most ${STREAM_INTERVAL_MAX_MS}.`,
  }),
);
