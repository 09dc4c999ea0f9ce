import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chatTemplateSource } from '../../src/protocols/common/chat-template-source.ts';
import { fallbackChatPrompt, renderChatPrompt } from '../../src/protocols/common/fallback-chat-template.ts';

/** The documented fallback rule for models without a chat template (pure functions, no server). */
const chat = [
  { role: 'system' as const, content: 'Be kind.' },
  { role: 'user' as const, content: 'Hi' },
];

test('ChatML when the vocabulary has its control tokens', () => {
  assert.deepEqual(fallbackChatPrompt(chat, { chatMlTokens: true }), {
    prompt: '<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
    stopStrings: ['<|im_end|>', '<|im_start|>'],
    template: 'chatml',
  });
});

test('KoboldCpp’s instruct tags otherwise, with their stop strings', () => {
  assert.deepEqual(fallbackChatPrompt(chat, { chatMlTokens: false }), {
    prompt: '\n### Instruction:\nBe kind.\n### Instruction:\nHi\n### Response:\n',
    stopStrings: ['### Instruction:', '### Response:'],
    template: 'instruct',
  });
});

test('a trailing assistant message is a prefill the model continues', () => {
  const prefill = [...chat, { role: 'assistant' as const, content: 'Well,' }];
  assert.ok(fallbackChatPrompt(prefill, { chatMlTokens: true }).prompt.endsWith('<|im_start|>assistant\nWell,'));
  assert.ok(fallbackChatPrompt(prefill, { chatMlTokens: false }).prompt.endsWith('\n### Response:\nWell,'));
});

test('the model’s own template wins; ChatML detection asks the tokenizer', () => {
  const singleTokens = new Set(['<|im_start|>', '<|im_end|>']);
  const engine = {
    tokenize: (text: string) => (singleTokens.has(text) ? [7] : [7, 8, 9]),
    formatChat: () => ({ prompt: 'OWN', stopStrings: ['END'], template: 'model' as const }),
  };
  const source = chatTemplateSource(engine);
  assert.equal(source.chatMlTokens, true);
  assert.equal(renderChatPrompt(chat, source).prompt, 'OWN');
  const none = chatTemplateSource({ tokenize: () => [1, 2], formatChat: () => undefined });
  assert.equal(none.chatMlTokens, false);
  assert.equal(renderChatPrompt(chat, none).template, 'instruct');
});
