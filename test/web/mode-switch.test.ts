import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createSession, type Mode, type Session, type Turn } from '../../web/src/model/session.ts';
import { buildPrompt } from '../../web/src/prompt/build-prompt.ts';
import { planLengths } from '../../web/src/prompt/context-lengths.ts';
import { isNarration, proseText, switchModeTurns } from '../../web/src/prompt/mode-switch.ts';

const turn = (role: Turn['role'], text: string, extra: Partial<Turn> = {}): Turn => ({
  id: `${role}:${text}`,
  role,
  text,
  ...extra,
});

/** What a session shows and sends in its mode: the prompt the model gets, without any reply tag. */
async function promptOf(s: Session): Promise<string> {
  return (await buildPrompt(s)).prompt;
}

function switchTo(s: Session, mode: Mode): Session {
  return { ...s, mode, turns: switchModeTurns(s.turns, s.mode, mode, s.userName) };
}

const storyText = (s: Session) => s.turns.map((t) => proseText(t, s.userName, s.mode)).join('');

describe('mode switch: story → chat', () => {
  const story = createSession({
    mode: 'story',
    turns: [turn('user', 'Once upon a time'), turn('assistant', ' there was a fox.\nIt ran.')],
  });

  it('keeps the story as one narration block, not as something "You" said', async () => {
    const chat = switchTo(story, 'chat');
    assert.equal(chat.turns.length, 1);
    const [block] = chat.turns;
    assert.ok(block && isNarration(block));
    assert.equal(block.text, 'Once upon a time there was a fox.\nIt ran.');
    const prompt = await promptOf(chat);
    assert.ok(prompt.startsWith('Once upon a time there was a fox.\nIt ran.\n'), prompt);
    assert.doesNotMatch(prompt, /You: Once/);
  });

  it('instruct mode gets the narration as plain text too', async () => {
    const instruct = switchTo(story, 'instruct');
    assert.ok(instruct.turns[0] && isNarration(instruct.turns[0]));
    const prompt = await promptOf(instruct);
    assert.ok(prompt.includes('Once upon a time there was a fox.\nIt ran.\n'), prompt);
    assert.doesNotMatch(prompt, /<\|im_start\|>user\nOnce/);
  });

  it('story → chat → story reads exactly as before', () => {
    const back = switchTo(switchTo(story, 'chat'), 'story');
    assert.equal(storyText(back), storyText(story));
  });
});

describe('mode switch: chat → story', () => {
  // The session: a story, then a chat about it.
  const chat: Session = {
    ...switchTo(createSession({ mode: 'story', turns: [turn('user', 'Once upon a time')] }), 'chat'),
  };
  chat.turns.push(turn('user', 'Hello! Can you tell me a story?'), turn('assistant', "Sam's kite."));

  it('puts every message on its own line instead of gluing them together', () => {
    const story = switchTo(chat, 'story');
    assert.equal(storyText(story), "Once upon a time\nHello! Can you tell me a story?\nSam's kite.");
  });

  it('chat → story → chat gives the same messages back, not one narration block', async () => {
    const back = switchTo(switchTo(chat, 'story'), 'chat');
    assert.deepEqual(
      back.turns.map((t) => [t.role, t.text, isNarration(t)]),
      chat.turns.map((t) => [t.role, t.text, isNarration(t)]),
    );
    assert.equal(await promptOf(back), await promptOf(chat));
  });

  it('text written in story mode between the messages joins the narration, and nothing is lost', () => {
    const story = switchTo(chat, 'story');
    story.turns.push(turn('user', '\nThe end.'));
    const back = switchTo(story, 'chat');
    assert.equal(back.turns.at(-1)?.text, '\nThe end.');
    assert.ok(back.turns.at(-1) && isNarration(back.turns.at(-1) as Turn));
    assert.equal(storyText(switchTo(back, 'story')), storyText(story));
  });

  it('does not add a separator where the text already breaks the line', () => {
    const lines = createSession({
      mode: 'chat',
      turns: [turn('user', 'First line\n'), turn('assistant', 'Second'), turn('user', '\nThird')],
    });
    assert.equal(storyText(switchTo(lines, 'story')), 'First line\nSecond\nThird');
  });
});

describe('mode switch: adventure', () => {
  it('adventure → story keeps the actions readable as "> …" lines', () => {
    const adventure = createSession({
      mode: 'adventure',
      turns: [
        turn('user', 'A cave.', { action: 'story' }),
        turn('user', 'light a torch', { action: 'do' }),
        turn('assistant', 'The walls glitter.'),
        turn('user', 'hello?', { action: 'say' }),
      ],
    });
    const before = storyText(adventure);
    assert.equal(before, 'A cave.\n> light a torch\nThe walls glitter.\n> You say "hello?"\n');
    assert.equal(storyText(switchTo(adventure, 'story')), before);
    assert.equal(storyText(switchTo(switchTo(adventure, 'story'), 'adventure')), before);
  });

  it('story → adventure does not turn the story into actions', () => {
    const story = createSession({ mode: 'story', turns: [turn('user', 'Once'), turn('assistant', ' upon a time.')] });
    assert.equal(storyText(switchTo(story, 'adventure')), 'Once upon a time.');
  });

  it('chat → adventure makes what the user said speech, each on its own line', () => {
    const chat = createSession({ mode: 'chat', turns: [turn('user', 'Hi'), turn('assistant', 'Hello.')] });
    assert.equal(storyText(switchTo(chat, 'adventure')), '\n> You say "Hi"\nHello.');
    const back = switchTo(switchTo(chat, 'adventure'), 'chat');
    assert.deepEqual(
      back.turns.map((t) => [t.role, t.text]),
      [
        ['user', 'Hi'],
        ['assistant', 'Hello.'],
      ],
    );
  });

  it('every round trip through all four modes keeps every character of the text', () => {
    const start = createSession({
      mode: 'story',
      turns: [turn('user', 'Once upon a time'), turn('assistant', ' a fox.')],
    });
    let s = start;
    for (const mode of ['chat', 'instruct', 'adventure', 'story', 'chat', 'story'] as const) s = switchTo(s, mode);
    assert.equal(storyText(s), storyText(start));
  });
});

describe('planLengths: the server context and the reply share', () => {
  it('follows a smaller server context and says so', () => {
    const plan = planLengths({ maxLength: 200, maxContextLength: 4096 }, 256);
    assert.equal(plan.maxContextLength, 256);
    assert.equal(plan.maxLength, 128, 'at most half of the context');
    assert.equal(plan.notes.length, 2);
    assert.match(plan.notes[0] ?? '', /using 256 tokens, the server's whole context/);
    assert.match(plan.notes[1] ?? '', /using 128 tokens, half of the 256-token context/);
  });

  it('leaves settings that fit alone, with no note', () => {
    assert.deepEqual(planLengths({ maxLength: 200, maxContextLength: 2048 }, 8192), {
      maxLength: 200,
      maxContextLength: 2048,
      notes: [],
    });
    assert.deepEqual(planLengths({ maxLength: 200, maxContextLength: 4096 }), {
      maxLength: 200,
      maxContextLength: 4096,
      notes: [],
    });
  });

  it('a 256-token server leaves the chat history half the context instead of 56 tokens', async () => {
    const s = createSession({ mode: 'chat' });
    const plan = planLengths(s.gen, 256);
    const built = await buildPrompt({ ...s, gen: { ...s.gen, ...plan } });
    assert.equal(built.budget, 128);
  });
});
