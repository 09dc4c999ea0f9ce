import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../../src/main.ts';
import { postJson, startTestServer } from '../support/test-server.ts';
import { WsSession } from '../support/ws-session.ts';

describe('GET /api/extra/generate/ws (multiplexed WebSocket streams)', () => {
  let server: RunningServer;
  let wsUrl: string;
  before(async () => {
    server = await startTestServer({ contextSize: 2048, parallel: 2 });
    wsUrl = `${server.url.replace('http', 'ws')}/api/extra/generate/ws`;
  });
  after(async () => server.close());

  test('two generations on one connection, each with its own text, ids increasing, end messages', async () => {
    const session = await WsSession.open(wsUrl);
    session.send({
      type: 'start',
      id: 'WS-A',
      request: { prompt: 'a', max_length: 30, ban_eos_token: true, grammar: 'root ::= ("ab")+' },
    });
    session.send({
      type: 'start',
      id: 'WS-B',
      request: { prompt: 'b', max_length: 30, ban_eos_token: true, grammar: 'root ::= ("cd")+' },
    });
    await session.until(() => Boolean(session.ended('WS-A') && session.ended('WS-B')));
    assert.equal(session.text('WS-A').replaceAll('ab', ''), '');
    assert.equal(session.text('WS-B').replaceAll('cd', ''), '');
    assert.ok(session.text('WS-A').length >= 20);
    for (const id of ['WS-A', 'WS-B']) {
      const ids = session.messages
        .filter((m) => m.id === id && m.event_id !== undefined)
        .map((m) => m.event_id as number);
      assert.deepEqual(
        ids,
        [...ids].sort((x, y) => x - y),
      );
      assert.equal(session.ended(id)?.finish_reason, 'length');
      const check = await postJson(`${server.url}/api/extra/generate/check`, { genkey: id });
      assert.equal(check.body.results[0].text, session.text(id));
    }
    session.socket.close();
  });

  test('ping/pong, abort by id, and clear errors for bad messages', async () => {
    const session = await WsSession.open(wsUrl);
    session.send({ type: 'ping' });
    await session.until((m) => m.some((x) => x.type === 'pong'));
    session.send({ type: 'start', id: 'WS-LONG', request: { prompt: 'x', max_length: 2000, ban_eos_token: true } });
    await session.until(() => session.text('WS-LONG').length > 0);
    session.send({ type: 'abort', id: 'WS-LONG' });
    await session.until(() => Boolean(session.ended('WS-LONG')));
    assert.equal(session.ended('WS-LONG')?.finish_reason, 'length');
    session.send({ type: 'start', id: 'BAD', request: { max_length: 'many' } });
    session.socket.send('not json');
    await session.until((m) => m.filter((x) => x.type === 'error').length >= 2);
    const errors = session.messages.filter((m) => m.type === 'error');
    assert.ok(
      errors.some((e) => e.id === 'BAD' && e.status === 400 && /max_length/.test(e.message ?? '')),
      JSON.stringify(errors),
    );
    session.socket.close();
  });

  test('two starts with one id in one burst: the second is refused, the first streams', async () => {
    const session = await WsSession.open(wsUrl);
    const start = { type: 'start', id: 'WS-TWICE', request: { prompt: 'x', max_length: 4, sampler_seed: 3 } };
    // One write, so both frames reach the server in the same read and their handlers run back to back.
    session.socket.send(JSON.stringify(start));
    session.socket.send(JSON.stringify(start));
    await session.until(() => Boolean(session.ended('WS-TWICE')));
    await session.until((m) => m.some((x) => x.type === 'error' && x.id === 'WS-TWICE'));
    const errors = session.messages.filter((m) => m.type === 'error' && m.id === 'WS-TWICE');
    assert.equal(errors.length, 1);
    assert.equal(errors[0]?.status, 409);
    assert.equal(session.messages.filter((m) => m.type === 'end' && m.id === 'WS-TWICE').length, 1);
    session.socket.close();
  });

  test('after a dropped connection, start with last_event_id resumes without loss or duplication', async () => {
    const first = await WsSession.open(wsUrl);
    const request = { prompt: 'x', max_length: 400, ban_eos_token: true, sampler_seed: 8 };
    first.send({ type: 'start', id: 'WS-RESUME', request });
    await first.until(() => first.messages.filter((m) => m.type === 'token').length >= 5);
    first.socket.terminate();
    const tokens = first.messages.filter((m) => m.type === 'token');
    const lastId = tokens.at(-1)?.event_id as number;
    const seen = tokens.map((m) => m.text).join('');
    const second = await WsSession.open(wsUrl);
    second.send({ type: 'start', id: 'WS-RESUME', request, last_event_id: lastId });
    await second.until(() => Boolean(second.ended('WS-RESUME')));
    const check = await postJson(`${server.url}/api/extra/generate/check`, { genkey: 'WS-RESUME' });
    assert.equal(seen + second.text('WS-RESUME'), check.body.results[0].text);
    assert.equal(check.body.results[0].status, 'done');
    second.socket.close();
  });
});
