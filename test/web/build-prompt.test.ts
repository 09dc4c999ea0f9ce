import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createSession, createWorldInfoEntry, type Session, type Turn } from '../../web/src/model/session.ts';
import { buildPrompt, estimateTokens } from '../../web/src/prompt/build-prompt.ts';
import { ReasoningSplitter, splitReasoning } from '../../web/src/prompt/reasoning.ts';

const turn = (role: Turn['role'], text: string, extra: Partial<Turn> = {}): Turn => ({
  id: text,
  role,
  text,
  ...extra,
});

/** A whitespace tokenizer stands in for the server's tokencount: exact, and easy to reason about. */
const wordCount = (text: string): number => text.split(/\s+/).filter((w) => w.length > 0).length;

function story(words: number): string {
  return Array.from({ length: words }, (_, i) => `w${i}`).join(' ');
}

describe('buildPrompt: budgeting', () => {
  it('keeps the whole story when it fits', async () => {
    const s = createSession({ turns: [turn('user', 'Once upon a time'), turn('assistant', ' there was a fox.')] });
    const built = await buildPrompt(s);
    assert.equal(built.prompt, 'Once upon a time there was a fox.');
    assert.equal(built.trimmedChars, 0);
    assert.equal(built.budget, 4096 - 200);
  });

  it('fills max_context_length - max_length with the most recent text, measured by the counter', async () => {
    const s = createSession({ memory: 'MEMORY', turns: [turn('user', story(1000))] });
    s.gen.maxContextLength = 300;
    s.gen.maxLength = 100;
    const built = await buildPrompt(s, { countTokens: wordCount });
    assert.ok(built.promptTokens <= 200, `prompt used ${built.promptTokens} tokens, budget 200`);
    assert.ok(built.promptTokens >= 180, `prompt should use most of the budget, used ${built.promptTokens}`);
    assert.ok(built.prompt.startsWith('MEMORY\n'), 'memory is always kept, first');
    assert.ok(built.prompt.endsWith('w999'), 'the newest text is kept');
    assert.ok(!built.prompt.includes(' w0 '), 'the oldest text is dropped');
    assert.ok(built.trimmedChars > 0);
    assert.equal(built.exactCount, true);
    // Cut on a word boundary: the first story word is whole.
    const firstStoryWord = built.prompt.slice('MEMORY\n'.length).split(' ')[0]!;
    assert.match(firstStoryWord, /^w\d+$/);
  });

  it('drops whole turns in chat mode and never splits one', async () => {
    const turns = Array.from({ length: 40 }, (_, i) => turn(i % 2 ? 'assistant' : 'user', `message ${i} ${story(8)}`));
    const s = createSession({ mode: 'chat', turns, aiName: 'Bot', userName: 'Me' });
    s.gen.maxContextLength = 150;
    s.gen.maxLength = 50;
    const built = await buildPrompt(s, { countTokens: wordCount });
    assert.ok(built.promptTokens <= 100);
    const lines = built.prompt.split('\n');
    assert.match(lines[0]!, /^(Me|Bot): message \d+ w0 w1 w2 w3 w4 w5 w6 w7$/);
    assert.equal(lines.at(-1), 'Bot:');
    assert.ok(built.prompt.includes('message 39'));
    // Messages for chat APIs hold the same turns.
    const userAndAi = built.messages.filter((m) => m.role !== 'system');
    assert.equal(userAndAi.length, lines.length - 1);
    assert.equal(userAndAi.at(-1)!.content, turns[39]!.text);
  });

  it('uses an async counter (server tokencount) and few calls', async () => {
    let calls = 0;
    const counter = async (text: string) => {
      calls += 1;
      await new Promise((r) => setTimeout(r, 1));
      return Math.ceil(text.length / 4);
    };
    const s = createSession({ turns: [turn('user', story(5000))] });
    s.gen.maxContextLength = 1024;
    s.gen.maxLength = 24;
    const built = await buildPrompt(s, { countTokens: counter });
    assert.ok(built.promptTokens <= 1000);
    assert.ok(built.promptTokens > 900, `filled ${built.promptTokens} of 1000`);
    assert.ok(calls <= 5, `${calls} tokencount calls`);
  });

  it('estimates pessimistically without a counter', () => {
    assert.equal(estimateTokens('abcdef'), 2);
  });
});

describe('buildPrompt: memory, author’s note, world info', () => {
  const base = (): Session =>
    createSession({
      memory: 'The kingdom of Arn.',
      authorsNote: 'Keep it grim.',
      authorsNoteDepth: 1,
      turns: [turn('user', 'Line one.\nLine two.\nLine three.')],
    });

  it('inserts the author’s note before the last `depth` lines', async () => {
    const built = await buildPrompt(base());
    assert.equal(
      built.prompt,
      "The kingdom of Arn.\nLine one.\nLine two.\n[Author's note: Keep it grim.]\nLine three.",
    );
  });

  it('depth 0 places the note at the very end', async () => {
    const s = base();
    s.authorsNoteDepth = 0;
    const built = await buildPrompt(s);
    assert.ok(built.prompt.endsWith("Line three.\n[Author's note: Keep it grim.]\n"));
  });

  it('triggers world info by keyword, honouring secondary keys, anti-keys, constant and case', async () => {
    const s = base();
    s.turns = [turn('user', 'The dragon flew over the Castle.')];
    s.worldInfo = [
      createWorldInfoEntry({ id: 'dragon', keys: ['dragon'], content: 'Dragons breathe fire.' }),
      createWorldInfoEntry({ id: 'elf', keys: ['elf'], content: 'Elves are tall.' }),
      createWorldInfoEntry({ id: 'always', constant: true, content: 'Magic is rare.' }),
      createWorldInfoEntry({
        id: 'sel',
        keys: ['castle'],
        secondaryKeys: ['moat'],
        selective: true,
        content: 'The castle has a moat.',
      }),
      createWorldInfoEntry({ id: 'anti', keys: ['castle'], antiKeys: ['dragon'], content: 'Peaceful castle.' }),
      createWorldInfoEntry({ id: 'case', keys: ['castle'], caseSensitive: true, content: 'lowercase castle' }),
      createWorldInfoEntry({ id: 'off', keys: ['dragon'], disabled: true, content: 'disabled' }),
      createWorldInfoEntry({ id: 'sub', keys: ['fl'], content: 'substring must not match' }),
    ];
    const built = await buildPrompt(s);
    assert.deepEqual(built.worldInfoIds, ['dragon', 'always']);
    assert.ok(built.prompt.startsWith('The kingdom of Arn.\nDragons breathe fire.\nMagic is rare.\n'));
  });

  it('rolls world info probability with the injected random source', async () => {
    const s = base();
    s.worldInfo = [createWorldInfoEntry({ id: 'p', keys: ['Line'], probability: 50, content: 'maybe' })];
    assert.deepEqual((await buildPrompt(s, { random: () => 0.2 })).worldInfoIds, ['p']);
    assert.deepEqual((await buildPrompt(s, { random: () => 0.8 })).worldInfoIds, []);
  });
});

describe('buildPrompt: modes and instruct templates', () => {
  it('ChatML: system prompt and memory in the system block, ends on the assistant tag', async () => {
    const s = createSession({
      mode: 'instruct',
      memory: 'Facts.',
      turns: [turn('user', 'Hi'), turn('assistant', 'Hello!'), turn('user', 'Tell a joke')],
    });
    s.instruct.systemPrompt = 'Be helpful.';
    const built = await buildPrompt(s);
    assert.equal(
      built.prompt,
      '<|im_start|>system\nBe helpful.\nFacts.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nTell a joke<|im_end|>\n<|im_start|>assistant\n',
    );
    assert.deepEqual(built.stopSequences, ['<|im_start|>user', '<|im_end|>']);
    assert.deepEqual(built.messages, [
      { role: 'system', content: 'Be helpful.\n\nFacts.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
      { role: 'user', content: 'Tell a joke' },
    ]);
  });

  it('Llama 3, Mistral and Alpaca tags', async () => {
    const turns = [turn('user', 'Q')];
    const llama = createSession({ mode: 'instruct', turns });
    llama.instruct.preset = 'llama3';
    assert.equal(
      (await buildPrompt(llama)).prompt,
      '<|start_header_id|>user<|end_header_id|>\n\nQ<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    );
    const mistral = createSession({ mode: 'instruct', turns });
    mistral.instruct.preset = 'mistral';
    assert.equal((await buildPrompt(mistral)).prompt, '[INST] Q [/INST]');
    const alpaca = createSession({ mode: 'instruct', turns });
    alpaca.instruct.preset = 'alpaca';
    assert.equal((await buildPrompt(alpaca)).prompt, '### Instruction:\nQ\n\n### Response:\n');
  });

  it('custom tags are used when the preset is "custom"', async () => {
    const s = createSession({ mode: 'instruct', turns: [turn('user', 'Q')] });
    s.instruct.preset = 'custom';
    s.instruct.custom = {
      systemStart: '',
      systemEnd: '',
      userStart: 'U> ',
      userEnd: '\n',
      assistantStart: 'A> ',
      assistantEnd: '\n',
    };
    const built = await buildPrompt(s);
    assert.equal(built.prompt, 'U> Q\nA> ');
    assert.deepEqual(built.stopSequences, ['U>']);
  });

  it('continuing the last reply leaves it open', async () => {
    const s = createSession({ mode: 'instruct', turns: [turn('user', 'Q'), turn('assistant', 'Part')] });
    const built = await buildPrompt(s, { continueLast: true });
    assert.ok(built.prompt.endsWith('<|im_start|>assistant\nPart'));
    const chat = createSession({ mode: 'chat', aiName: 'Bot', turns: [turn('user', 'Hi'), turn('assistant', 'Well')] });
    assert.equal((await buildPrompt(chat, { continueLast: true })).prompt, 'You: Hi\nBot: Well');
  });

  it('chat mode names turns and stops on the user name; adventure renders actions', async () => {
    const chat = createSession({ mode: 'chat', userName: 'Ann', aiName: 'Bob', turns: [turn('user', 'Hi Bob')] });
    const built = await buildPrompt(chat);
    assert.equal(built.prompt, 'Ann: Hi Bob\nBob:');
    assert.deepEqual(built.stopSequences, ['\nAnn:']);
    const adv = createSession({
      mode: 'adventure',
      turns: [
        turn('assistant', 'You stand in a cave.'),
        turn('user', 'light a torch', { action: 'do' }),
        turn('assistant', 'The cave glows.'),
        turn('user', 'hello?', { action: 'say' }),
      ],
    });
    assert.equal(
      (await buildPrompt(adv)).prompt,
      'You stand in a cave.\n> light a torch\nThe cave glows.\n> You say "hello?"\n',
    );
  });

  it('user stop sequences are added once', async () => {
    const s = createSession({ mode: 'chat', turns: [turn('user', 'x')] });
    s.gen.stopSequences = ['\nYou:', 'THE END'];
    assert.deepEqual((await buildPrompt(s)).stopSequences, ['\nYou:', 'THE END']);
  });
});

describe('reasoning blocks', () => {
  it('splits a leading <think> block from the answer, open or closed', () => {
    assert.deepEqual(splitReasoning('<think>\nhmm\n</think>\n\nAnswer.'), {
      reasoning: 'hmm',
      answer: 'Answer.',
      open: false,
    });
    assert.deepEqual(splitReasoning('<think>still going'), { reasoning: 'still going', answer: '', open: true });
    assert.deepEqual(splitReasoning('No tags <think>x</think>'), {
      reasoning: undefined,
      answer: 'No tags <think>x</think>',
      open: false,
    });
  });

  it('leaves earlier replies’ reasoning out of the prompt and the messages', async () => {
    const s = createSession({
      mode: 'instruct',
      turns: [turn('user', 'Q1'), turn('assistant', '<think>long musing</think>A1'), turn('user', 'Q2')],
    });
    const built = await buildPrompt(s);
    assert.ok(!built.prompt.includes('musing'));
    assert.ok(built.prompt.includes('<|im_start|>assistant\nA1<|im_end|>'));
    assert.deepEqual(built.messages[1], { role: 'assistant', content: 'A1' });
  });
});

describe('impersonation', () => {
  it('ends the prompt on the user’s name or tag and stops at the AI’s', async () => {
    const chat = createSession({
      mode: 'chat',
      userName: 'Ann',
      aiName: 'Bob',
      turns: [turn('assistant', 'Hello Ann.')],
    });
    const built = await buildPrompt(chat, { speaker: 'user' });
    assert.equal(built.prompt, 'Bob: Hello Ann.\nAnn:');
    assert.deepEqual(built.stopSequences, ['\nBob:']);
    assert.match(built.messages.at(-1)!.content, /Write Ann's next message/);
    const instruct = createSession({ mode: 'instruct', turns: [turn('user', 'Q'), turn('assistant', 'A')] });
    const ib = await buildPrompt(instruct, { speaker: 'user' });
    assert.ok(ib.prompt.endsWith('<|im_start|>assistant\nA<|im_end|>\n<|im_start|>user\n'));
    assert.deepEqual(ib.stopSequences, ['<|im_start|>assistant', '<|im_end|>']);
  });
});

describe('streaming reasoning splitter', () => {
  it('routes deltas to reasoning and answer, with tags split across deltas', () => {
    const splitter = new ReasoningSplitter();
    const parts = [' <thi', 'nk>hmm', ' ok</th', 'ink>', '\nThe', ' answer'].map((d) => splitter.push(d));
    assert.equal(parts.map((p) => p.reasoning).join(''), 'hmm ok');
    assert.equal(parts.map((p) => p.answer).join(''), 'The answer');
    assert.equal(parts.at(-1)!.thinking, true);
  });

  it('passes a reply without reasoning straight through', () => {
    const splitter = new ReasoningSplitter();
    const parts = ['Hel', 'lo <think> is just text'].map((d) => splitter.push(d));
    assert.equal(parts.map((p) => p.answer).join(''), 'Hello <think> is just text');
    assert.equal(
      parts.every((p) => p.reasoning === '' && !p.thinking),
      true,
    );
  });
});

describe('group chat', () => {
  it('alternates the AI characters and stops at anyone else’s line', async () => {
    const s = createSession({
      mode: 'chat',
      userName: 'Me',
      aiName: 'Ann',
      otherAiNames: ['Bob'],
      turns: [turn('user', 'Hi all')],
    });
    let built = await buildPrompt(s);
    assert.equal(built.speaker, 'Ann');
    assert.ok(built.prompt.endsWith('Me: Hi all\nAnn:'));
    assert.deepEqual(built.stopSequences, ['\nMe:', '\nBob:']);
    s.turns = [...s.turns, turn('assistant', 'Hello!', { name: 'Ann' })];
    built = await buildPrompt(s);
    assert.equal(built.speaker, 'Bob', 'after Ann comes Bob');
    assert.ok(built.prompt.endsWith('Ann: Hello!\nBob:'));
    assert.deepEqual(built.stopSequences, ['\nMe:', '\nAnn:']);
    s.turns = [...s.turns, turn('assistant', 'Yo.', { name: 'Bob' }), turn('user', 'And?')];
    assert.equal((await buildPrompt(s)).speaker, 'Ann', 'a user message does not reset the order');
    assert.equal((await buildPrompt(s, { aiSpeaker: 'Bob' })).speaker, 'Bob', 'Retry keeps its character');
    assert.match(built.messages[0]!.content, /group chat between Me, Ann, Bob\. Reply as Bob only/);
    assert.deepEqual(built.messages.at(-1), { role: 'assistant', content: 'Ann: Hello!' });
  });
});
