import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createSession, createWorldInfoEntry } from '../../web/src/model/session.ts';
import {
  exportBackup,
  exportSession,
  importAnyFile,
  importFileSessions,
  sessionToText,
} from '../../web/src/prompt/session-file.ts';
import { makeCardPng } from './support/card-png.ts';

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

describe('importers', () => {
  it('round-trips our own JSON into a new session', () => {
    const s = createSession({
      name: 'Mine',
      mode: 'chat',
      memory: 'm',
      turns: [{ id: 'a', role: 'user', text: 'hi' }],
    });
    s.worldInfo = [createWorldInfoEntry({ keys: ['k'], content: 'c' })];
    s.gen.samplers.temperature = 1.3;
    const back = importAnyFile(new TextEncoder().encode(exportSession(s)), 'mine.json');
    assert.notEqual(back.id, s.id, 'an import never reuses an existing id');
    assert.deepEqual({ ...back, id: s.id, rev: s.rev }, s);
  });

  it('loads a KoboldAI Lite story save with memory, author’s note and world info', () => {
    const lite = {
      gamestarted: true,
      prompt: 'The ship sank.',
      memory: 'Sailors.',
      authorsnote: 'Tense.',
      anotetemplate: '[Note: <|>]',
      actions: [' Waves rose.', ' Gulls cried.'],
      worldinfo: [
        {
          key: 'ship, boat',
          keysecondary: 'sea',
          keyanti: '',
          content: 'The ship is old.',
          comment: 'ship',
          selective: true,
          constant: false,
          probability: 80,
        },
      ],
      savedsettings: { opmode: 1 },
    };
    const s = importAnyFile(enc(lite), 'wreck.json');
    assert.equal(s.mode, 'story');
    assert.equal(s.name, 'wreck');
    assert.equal(s.memory, 'Sailors.');
    assert.equal(s.authorsNote, 'Tense.');
    assert.equal(s.authorsNoteTemplate, '[Note: <|>]');
    assert.deepEqual(
      s.turns.map((t) => t.text),
      ['The ship sank.', ' Waves rose.', ' Gulls cried.'],
    );
    assert.deepEqual(s.worldInfo[0]!.keys, ['ship', 'boat']);
    assert.deepEqual(s.worldInfo[0]!.secondaryKeys, ['sea']);
    assert.equal(s.worldInfo[0]!.selective, true);
    assert.equal(s.worldInfo[0]!.probability, 80);
  });

  it('loads Lite instruct and chat saves as turns', () => {
    const instruct = importAnyFile(
      enc({
        prompt: 'Preamble',
        actions: ['\n{{[INPUT]}}\nHello', '\n{{[OUTPUT]}}\nHi there'],
        memory: '',
        savedsettings: { opmode: 4 },
      }),
      'i.json',
    );
    assert.equal(instruct.mode, 'instruct');
    assert.equal(instruct.memory, 'Preamble');
    assert.deepEqual(
      instruct.turns.map((t) => [t.role, t.text]),
      [
        ['user', 'Hello'],
        ['assistant', 'Hi there'],
      ],
    );
    const chat = importAnyFile(
      enc({
        prompt: 'A tavern.\nKobo: Welcome!',
        actions: ['\nMe: Thanks', '\nKobo: Sit\ndown.'],
        memory: '',
        savedsettings: { opmode: 3, chatname: 'Me', chatopponent: 'Kobo' },
      }),
      'c.json',
    );
    assert.equal(chat.mode, 'chat');
    assert.equal(chat.aiName, 'Kobo');
    assert.equal(chat.userName, 'Me');
    assert.equal(chat.memory, 'A tavern.');
    assert.deepEqual(
      chat.turns.map((t) => [t.role, t.text]),
      [
        ['assistant', 'Welcome!'],
        ['user', 'Thanks'],
        ['assistant', 'Sit\ndown.'],
      ],
    );
  });

  const card = {
    spec: 'chara_card_v2',
    spec_version: '2.0',
    data: {
      name: 'Aria',
      description: '{{char}} is a bard who sings to {{user}}.',
      personality: 'cheerful',
      scenario: 'A market.',
      first_mes: 'Hello {{user}}, I am {{char}}!',
      mes_example: '',
      system_prompt: 'Stay in character.',
      character_book: {
        entries: [{ keys: ['lute'], secondary_keys: [], content: "{{char}}'s lute is old.", enabled: true }],
      },
    },
  };

  it('imports a Tavern v2 JSON card into chat mode with greeting, persona and lorebook', () => {
    const s = importAnyFile(enc(card), 'aria.json');
    assert.equal(s.mode, 'chat');
    assert.equal(s.aiName, 'Aria');
    assert.equal(s.memory, "Aria is a bard who sings to You.\nAria's personality: cheerful\nScenario: A market.");
    assert.deepEqual(
      s.turns.map((t) => [t.role, t.text]),
      [['assistant', 'Hello You, I am Aria!']],
    );
    assert.equal(s.instruct.systemPrompt, 'Stay in character.');
    assert.equal(s.worldInfo[0]!.content, "Aria's lute is old.");
  });

  it('imports a Tavern PNG card (v2 "chara" and v3 "ccv3" chunks) with its avatar', () => {
    const png = makeCardPng({
      chara: card,
      ccv3: { ...card, spec: 'chara_card_v3', data: { ...card.data, name: 'Aria3' } },
    });
    const s = importAnyFile(png, 'aria.png');
    assert.equal(s.aiName, 'Aria3', 'v3 wins over v2');
    assert.ok(s.avatar?.startsWith('data:image/png;base64,'));
    const v2only = importAnyFile(makeCardPng({ chara: card }), 'aria.png');
    assert.equal(v2only.aiName, 'Aria');
  });

  it('rejects files it does not know with a readable message', () => {
    assert.throws(() => importAnyFile(enc({ hello: 1 }), 'x.json'), /not a format Kindling knows/);
    assert.throws(() => importAnyFile(new TextEncoder().encode('nope'), 'x.txt'), /neither JSON nor a PNG/);
  });

  it('exports plain text / Markdown', () => {
    const chat = createSession({
      mode: 'chat',
      aiName: 'Bot',
      turns: [
        { id: 'a', role: 'user', text: 'Hi' },
        { id: 'b', role: 'assistant', text: 'Hello!' },
      ],
    });
    assert.equal(sessionToText(chat), '**You:** Hi\n\n**Bot:** Hello!');
    const story = createSession({
      turns: [
        { id: 'a', role: 'user', text: 'Once' },
        { id: 'b', role: 'assistant', text: ' upon.' },
      ],
    });
    assert.equal(sessionToText(story), 'Once upon.');
  });

  it('a backup file restores every session with fresh ids', () => {
    const a = createSession({ name: 'A' });
    const b = createSession({ name: 'B', mode: 'chat' });
    const back = importFileSessions(new TextEncoder().encode(exportBackup([a, b])), 'backup.json');
    assert.deepEqual(
      back.map((s) => [s.name, s.mode]),
      [
        ['A', 'story'],
        ['B', 'chat'],
      ],
    );
    assert.ok(back.every((s) => s.id !== a.id && s.id !== b.id));
    assert.equal(importFileSessions(new TextEncoder().encode(exportSession(a)), 'a.json').length, 1);
  });
});
