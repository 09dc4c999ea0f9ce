import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BLANK_BODY, parseJsonBody } from '../../src/server/json-body.ts';

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
