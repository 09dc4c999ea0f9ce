import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultConnection, normalizeUserUrl, providers } from '../../web/src/api/providers.ts';
import { createSession, type Turn } from '../../web/src/model/session.ts';
import { buildPrompt } from '../../web/src/prompt/build-prompt.ts';
import { LiveText } from '../../web/src/state/live-text.ts';
import { findStop, toTextRequest } from '../../web/src/state/text-request.ts';
import { emptyHistory, maxUndoSteps, record, redo, undo } from '../../web/src/state/undo-history.ts';

const t = (text: string): Turn => ({ id: text, role: 'user', text });

describe('undo history', () => {
  it('undoes and redoes turn lists, and a new change clears redo', () => {
    const a = [t('a')];
    const b = [t('a'), t('b')];
    const c = [t('a'), t('b'), t('c')];
    let h = record(emptyHistory(), a);
    h = record(h, b);
    const u1 = undo(h, c)!;
    assert.equal(u1.turns, b);
    const u2 = undo(u1.history, u1.turns)!;
    assert.equal(u2.turns, a);
    const r1 = redo(u2.history, u2.turns)!;
    assert.equal(r1.turns, b);
    assert.equal(record(r1.history, r1.turns).future.length, 0);
    assert.equal(undo(emptyHistory(), a), undefined);
  });

  it(`keeps the last ${maxUndoSteps} steps`, () => {
    let h = emptyHistory();
    for (let i = 0; i < maxUndoSteps + 20; i++) h = record(h, [t(String(i))]);
    assert.equal(h.past.length, maxUndoSteps);
    assert.equal(h.past[0]![0]!.text, '20');
  });
});

describe('live text batching', () => {
  it('hands the view one append per frame, and a replace after set()', () => {
    const frames: (() => void)[] = [];
    Object.assign(globalThis, {
      requestAnimationFrame: (cb: () => void) => frames.push(cb),
      cancelAnimationFrame: () => undefined,
    });
    let onFrame = 0;
    const live = new LiveText(() => onFrame++);
    const calls: string[] = [];
    live.attach({ append: (d) => calls.push(`+${d}`), replace: (f) => calls.push(`=${f}`) });
    calls.length = 0;
    live.append('a');
    live.append('b');
    live.append('c');
    assert.equal(frames.length, 1, 'one frame scheduled for three tokens');
    assert.equal(live.text, 'abc');
    frames.shift()!();
    assert.deepEqual(calls, ['+abc']);
    live.append('d');
    live.set('xy');
    frames.shift()!();
    assert.deepEqual(calls, ['+abc', '=xy']);
    assert.equal(live.text, 'xy');
    assert.equal(onFrame, 3);
  });
});

describe('requests and stop strings', () => {
  it('finds a stop string completed by the last delta, including across deltas', () => {
    assert.equal(findStop('Hello\nYou:', 3, ['\nYou:']), 5);
    assert.equal(findStop('Hello there', 5, ['\nYou:']), -1);
    assert.equal(findStop('abc END def', 11, ['END', 'def']), 4);
  });

  it('maps samplers per provider and sends messages only to chat APIs', async () => {
    const s = createSession({ mode: 'chat', turns: [t('hi')] });
    s.gen.stopSequences = ['1', '2', '3', '4', '5'];
    s.gen.samplers.seed = 7;
    const built = await buildPrompt(s);
    const kobold = toTextRequest(built, s, { ...defaultConnection, provider: 'kindling' }, providers.kindling);
    assert.equal(kobold.prompt, 'You: hi\nAI:');
    assert.equal(kobold.messages, undefined);
    assert.equal(kobold.repPen, s.gen.samplers.rep_pen);
    assert.equal(kobold.seed, 7);
    assert.equal((kobold.extra as Record<string, number>).max_context_length, 4096);
    const openai = toTextRequest(
      built,
      s,
      { ...defaultConnection, provider: 'openai', baseUrl: 'https://api.openai.com/v1' },
      providers.openai,
    );
    assert.ok(openai.messages !== undefined && openai.prompt === undefined);
    assert.equal(openai.stop?.length, 4, 'OpenAI takes four stop strings; the rest are applied client-side');
    assert.equal(openai.topK, undefined, 'api.openai.com rejects top_k');
    const anthropic = toTextRequest(built, s, { ...defaultConnection, provider: 'anthropic' }, providers.anthropic);
    assert.deepEqual(anthropic.messages?.at(-1), { role: 'user', content: 'hi' });
  });

  it('normalises typed URLs like Lite does', () => {
    assert.equal(normalizeUserUrl('localhost:5001', 'kobold'), 'http://localhost:5001');
    assert.equal(normalizeUserUrl('http://192.168.1.5:5001/api/v1/', 'kobold'), 'http://192.168.1.5:5001');
    assert.equal(normalizeUserUrl('myhost:5001/api', 'kobold'), 'http://myhost:5001');
    assert.equal(normalizeUserUrl('openrouter.ai/api/v1/chat/completions', 'openai'), 'https://openrouter.ai/api/v1');
    assert.equal(normalizeUserUrl('http://127.0.0.1:11434/api', 'ollama'), 'http://127.0.0.1:11434');
  });
});
