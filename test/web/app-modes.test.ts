import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { RunningServer } from '../../src/main.ts';
import { startTestServer } from '../support/test-server.ts';
import { launchBrowser, outputText, watchErrors } from './support/browser.ts';
import { ensureWebBuild } from './support/web-build.ts';

// The web client on a server with a small (256-token) context, as with the bundled demo model: Settings follow
// the server, and switching modes keeps the story and the chat readable both ways.

let server: RunningServer;
let browser: Browser;

async function idle(page: Page): Promise<void> {
  await page.getByTestId('generate').and(page.locator(':enabled')).waitFor({ timeout: 30_000 });
}

async function generate(page: Page, text: string): Promise<void> {
  await page.getByTestId('prompt').fill(text);
  await page.getByTestId('generate').click();
  await idle(page);
}

describe('web client: context and mode changes', { timeout: 120_000 }, () => {
  before(async () => {
    await ensureWebBuild();
    server = await startTestServer({ contextSize: 256, parallel: 1 });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  it('Settings show the server context and a reply of at most half of it, each with a note', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors = watchErrors(page);
    await page.goto(server.url);
    await page.getByTestId('status').filter({ hasText: 'ctx 256' }).waitFor({ timeout: 15_000 });
    await page.getByRole('button', { name: 'Settings' }).click();
    assert.equal(await page.getByTestId('context-size').inputValue(), '256');
    assert.equal(await page.getByTestId('max-length').inputValue(), '128');
    const notes = await page.getByTestId('length-note').allTextContents();
    assert.equal(notes.length, 2, notes.join(' | '));
    assert.match(notes[0] ?? '', /256 tokens, the server's whole context \(the setting of 4096/);
    assert.match(notes[1] ?? '', /128 tokens, half of the 256-token context/);
    // A setting that fits is used as it is, and its note goes away.
    await page.getByTestId('max-length').fill('40');
    assert.equal(await page.getByTestId('length-note').count(), 1);
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('story → chat → story → chat keeps the narration, the messages and the line breaks', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors = watchErrors(page);
    await page.goto(server.url);
    await page.getByTestId('status').filter({ hasText: 'ctx 256' }).waitFor({ timeout: 15_000 });
    await page.getByRole('button', { name: 'Settings' }).click();
    await page.getByTestId('max-length').fill('6');
    await page.getByTestId('ban-eos').check();

    await page.getByTestId('mode').selectOption('story');
    await generate(page, 'Once upon a time');
    const story = await outputText(page);
    assert.ok(story.startsWith('Once upon a time') && story.length > 'Once upon a time'.length);

    await page.getByTestId('mode').selectOption('chat');
    assert.equal(await page.locator('.turn').count(), 1, 'the story is one block');
    assert.equal(await page.locator('.turn.narration').count(), 1, 'shown as narration');
    assert.equal(await page.locator('.turn.narration .turn-head strong').textContent(), 'Story');
    // A line break that ends the block is not rendered (the random model sometimes ends on one); every other is.
    assert.equal((await page.locator('.turn.narration .turn-text').textContent())?.trimEnd(), story.trimEnd());

    await generate(page, 'Hello! Can you tell me a story?');
    assert.equal(await page.locator('.turn').count(), 3);
    const reply = (await page.locator('.turn.assistant .turn-text').last().textContent()) ?? '';

    await page.getByTestId('mode').selectOption('story');
    const text = await outputText(page);
    assert.ok(text.includes(`${story}\nHello! Can you tell me a story?\n`), JSON.stringify(text));
    assert.ok(text.endsWith(reply), 'the reply follows the message');

    await page.getByTestId('mode').selectOption('chat');
    assert.equal(await page.locator('.turn').count(), 3, 'the messages come back as messages');
    assert.equal(
      await page.locator('.turn.user:not(.narration) .turn-text').textContent(),
      'Hello! Can you tell me a story?',
    );
    assert.equal(await page.locator('.turn.assistant .turn-text').last().textContent(), reply);
    assert.deepEqual(errors, []);
    await context.close();
  });
});
