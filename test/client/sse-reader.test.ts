import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type SseEvent, SseReader } from '../../src/client/index.ts';

interface Parsed {
  events: SseEvent[];
  comments: string[];
  retries: number[];
}

function parseInChunks(bytes: Uint8Array, chunkSize: number): Parsed {
  const parsed: Parsed = { events: [], comments: [], retries: [] };
  const reader = new SseReader({
    onEvent: (event) => parsed.events.push(event),
    onComment: (comment) => parsed.comments.push(comment),
    onRetry: (ms) => parsed.retries.push(ms),
  });
  for (let i = 0; i < bytes.length; i += chunkSize) reader.push(bytes.subarray(i, i + chunkSize));
  reader.end();
  return parsed;
}

// One stream with every field the spec has: BOM, comments, CRLF and lone CR line ends, id, retry, named
// events, multi-line data, `data:` without a space, multibyte text, and an unterminated trailing frame.
const STREAM =
  '\uFEFF: OPENROUTER PROCESSING\r\n\r\n' +
  'id: 1\r\nevent: message\r\ndata: {"token": "caf\u00e9 \u65e5\u672c \ud83d\udd25"}\r\n\r\n' +
  'retry: 3000\n\n' +
  ': ping\n\n' +
  'id: 2\rdata: line one\rdata:line two\r\r' +
  'event: message_stop\ndata: {"type":"message_stop"}\n\n' +
  'data: never terminated';

const EXPECTED: Parsed = {
  events: [
    { id: '1', event: 'message', data: '{"token": "caf\u00e9 \u65e5\u672c \ud83d\udd25"}' },
    { id: '2', event: undefined, data: 'line one\nline two' },
    { id: undefined, event: 'message_stop', data: '{"type":"message_stop"}' },
  ],
  comments: ['OPENROUTER PROCESSING', 'ping'],
  retries: [3000],
};

test('SseReader parses comments, id, retry, multi-line data, CR/LF/CRLF and BOM identically at every chunk size', () => {
  const bytes = new TextEncoder().encode(STREAM);
  for (let size = 1; size <= bytes.length; size++) {
    const parsed = parseInChunks(bytes, size);
    // `id` persists per the spec (last event id), so compare the fields the server set explicitly.
    assert.deepEqual(
      parsed.events.map((e) => ({ event: e.event, data: e.data })),
      EXPECTED.events.map((e) => ({ event: e.event, data: e.data })),
      `chunk size ${size}`,
    );
    assert.deepEqual(
      parsed.events.slice(0, 2).map((e) => e.id),
      ['1', '2'],
      `chunk size ${size}`,
    );
    assert.deepEqual(parsed.comments, EXPECTED.comments, `chunk size ${size}`);
    assert.deepEqual(parsed.retries, EXPECTED.retries, `chunk size ${size}`);
  }
});

test('SseReader drops a half-received frame at end of body instead of dispatching it', () => {
  const parsed = parseInChunks(new TextEncoder().encode('data: complete\n\ndata: {"token": "cut'), 5);
  assert.deepEqual(
    parsed.events.map((e) => e.data),
    ['complete'],
  );
});
