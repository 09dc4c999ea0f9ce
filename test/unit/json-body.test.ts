import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { BLANK_BODY, readJsonBody } from '../../src/server/json-body.ts';

/** A body as a socket delivers it: 64 KB chunks, so chunk boundaries fall inside characters too. */
const parseJsonBody = (body: Buffer, limit = 64 << 20) => {
  const chunks: Buffer[] = [];
  for (let at = 0; at < body.length; at += 65536) chunks.push(body.subarray(at, at + 65536));
  return readJsonBody(Readable.from(chunks), limit, body.length);
};

test('blank bodies are "no body", whatever whitespace they hold', async () => {
  for (const text of ['', ' ', '\n\r\t ', '\u00a0 \u2003', '\ufeff'])
    assert.equal(await parseJsonBody(Buffer.from(text)), BLANK_BODY, JSON.stringify(text));
});

test('JSON of any shape parses, small or many megabytes, and bad JSON rejects', async () => {
  for (const text of ['123', '"s"', 'true', 'null', ' {"a":[1,2]} '])
    assert.deepEqual(await parseJsonBody(Buffer.from(text)), JSON.parse(text));
  const prompt = 'Once upon a time, 日本語 🎉 '.repeat(200_000);
  assert.deepEqual(await parseJsonBody(Buffer.from(JSON.stringify({ prompt }))), { prompt });
  await assert.rejects(parseJsonBody(Buffer.from('{"a":')), SyntaxError);
  await assert.rejects(parseJsonBody(Buffer.from(`{"prompt":"${'x'.repeat(3 << 20)}`)), SyntaxError);
});

test('a big body decoded as it arrives is the same text, whatever character or broken byte run a chunk ends in', async () => {
  for (const filler of ['a', 'é', '日', '🎉']) {
    // Put every offset of a multi-byte character on the chunk boundaries, one body each.
    for (let shift = 0; shift < 4; shift++) {
      const text = `${'x'.repeat(shift)}${filler.repeat(Math.ceil(3_000_000 / Buffer.byteLength(filler)))}`;
      assert.deepEqual(await parseJsonBody(Buffer.from(JSON.stringify({ text }))), { text }, `${filler} +${shift}`);
    }
  }
  const broken = Buffer.concat([Buffer.from('{"text":"'), Buffer.alloc(3_000_000, 0x80), Buffer.from('"}')]);
  const parsed = (await parseJsonBody(broken)) as { text: string };
  assert.equal(parsed.text.length, 3_000_000, 'each stray continuation byte is one U+FFFD, as whole decoding gives');
  assert.equal(parsed.text, broken.toString('utf8').slice(9, -2));
});

test('past the limit, or not the length its Content-Length says, a body is refused with what a client can act on', async () => {
  const body = Buffer.from(JSON.stringify({ prompt: 'x'.repeat(200_000) }));
  const is = (code: string) => (error: unknown) => (error as { code?: string }).code === code;
  await assert.rejects(parseJsonBody(body, 100_000), is('payload_too_large'));
  await assert.rejects(readJsonBody(Readable.from([body]), 100, 1 << 29), is('payload_too_large'), 'refused unread');
  await assert.rejects(readJsonBody(Readable.from([body]), 1 << 30, body.length + 5), /Content-Length said/);
  await assert.rejects(readJsonBody(Readable.from([body]), 1 << 30, 10), /Content-Length said 10/);
});
