import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { startFakeOpenRouter } from '../support/fake-providers/index.ts';
import { launchBrowser, outputText } from './support/browser.ts';
import { startDemoKobold } from './support/demo-kobold.ts';
import { serveStaticApp } from './support/static-app.ts';
import { ensureWebBuild, webIndex } from './support/web-build.ts';

let html = '';

// Connecting: a Kobold URL that only speaks OpenAI is offered the switch, settings and the key survive a reload,
// Enter sends, and the page opened from file:// explains what to do instead of failing silently.

let browser: Browser;
let app: { url: string; close(): Promise<void> };

describe('web client connection handling', { timeout: 60_000 }, () => {
  before(async () => {
    html = await ensureWebBuild();
    app = await serveStaticApp(html);
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await app?.close();
  });

  it('offers to switch a Kobold URL that only answers as OpenAI-compatible; settings survive a reload; Enter sends', async () => {
    const fake = await startFakeOpenRouter({ models: ['local-model'], tokenCount: 10 });
    const page = await browser.newPage();
    await page.goto(app.url);
    await page.getByTestId('provider').selectOption('kobold');
    await page.getByTestId('endpoint-url').fill(`${fake.url}/v1`);
    await page.getByTestId('endpoint-url').dispatchEvent('change');
    await page.getByTestId('connect').click();
    await page.getByRole('button', { name: 'Switch to OpenAI-compatible' }).click();
    await page.locator('[data-testid="status"].connected').waitFor();
    assert.equal(await page.getByTestId('provider').inputValue(), 'openai');
    assert.match((await page.getByTestId('status').textContent()) ?? '', /local-model/);
    await page.getByTestId('api-key').fill('sk-kept');

    await page.reload();
    await page.locator('[data-testid="status"].connected').waitFor();
    assert.equal(await page.getByTestId('provider').inputValue(), 'openai');
    assert.equal(await page.getByTestId('endpoint-url').inputValue(), fake.url);
    assert.equal(await page.getByTestId('api-key').inputValue(), 'sk-kept', 'the key lives for the tab session');

    await page.getByTestId('prompt').fill('Pressing Enter');
    await page.getByTestId('prompt').press('Enter');
    await page
      .getByTestId('output')
      .filter({ hasText: fake.expectedText(1, 10).trim() })
      .waitFor();
    assert.ok((await outputText(page)).startsWith('Pressing Enter'));
    const completion = fake.requests.find((r) => r.path.endsWith('/completions'))!;
    assert.equal(completion.headers.authorization, 'Bearer sk-kept');
    await page.close();
    await fake.close();
  });

  it('opened from file:// it says how to connect', async () => {
    const page = await browser.newPage();
    await page.goto(pathToFileURL(webIndex).href);
    await page.locator('[data-testid="status"].error').waitFor();
    assert.match((await page.locator('.side .error').textContent()) ?? '', /opened from a file/);
    await page.close();
  });

  it('sampler presets apply, and the user can save their own', async () => {
    const page = await browser.newPage();
    await page.goto(app.url);
    await page.getByRole('button', { name: 'Settings' }).click();
    await page.getByTestId('sampler-preset').selectOption('precise');
    assert.equal(await page.getByTestId('temperature').inputValue(), '0.3');
    await page.getByTestId('temperature').fill('1.23');
    assert.equal(await page.getByTestId('sampler-preset').inputValue(), 'custom', 'an edit makes it custom');
    page.once('dialog', (dialog) => void dialog.accept('Mine'));
    await page.getByTestId('save-preset').click();
    await page.getByTestId('sampler-preset').selectOption('balanced');
    assert.equal(await page.getByTestId('temperature').inputValue(), '0.7');
    await page.getByTestId('sampler-preset').selectOption('user:Mine');
    assert.equal(await page.getByTestId('temperature').inputValue(), '1.23');
    await page.close();
  });

  it('streams <think> reasoning into a collapsed section and leaves it out of the next prompt', async () => {
    const reply = '<think>The riddle: it grows shorter as it burns. Wax, wick, flame.</think>\n\nA candle.';
    const demo = await startDemoKobold(html, () => reply, 40);
    const page = await browser.newPage();
    await page.goto(demo.url);
    await page.locator('[data-testid="status"].connected').waitFor();
    await page.getByTestId('mode').selectOption('chat');
    await page.getByTestId('prompt').fill('What gets shorter as it burns?');
    await page.getByTestId('generate').click();
    const live = page.getByTestId('live-reply');
    await live.locator('details.think').waitFor();
    assert.equal(await live.locator('details.think').getAttribute('open'), null, 'collapsed while streaming');
    assert.doesNotMatch((await live.textContent()) ?? '', /<think>/);
    await page.getByTestId('generate').and(page.locator(':enabled')).waitFor();
    const turn = page.locator('.turn.assistant').last();
    assert.equal(await turn.locator('details.think summary').textContent(), 'Thinking');
    assert.match((await turn.locator('.turn-text').textContent()) ?? '', /Wax, wick, flame\.A candle\.$/);
    await page.getByTestId('prompt').fill('Right!');
    await page.getByTestId('generate').click();
    await page.getByTestId('generate').and(page.locator(':enabled')).waitFor();
    await page.getByRole('button', { name: 'Context' }).click();
    const prompt = (await page.getByTestId('last-prompt').textContent()) ?? '';
    assert.match(prompt, /AI: A candle\.\nYou: Right!\nAI:$/);
    assert.doesNotMatch(prompt, /riddle/);
    await page.close();
    await demo.close();
  });

  it('group chat: two AI characters take turns', async () => {
    const demo = await startDemoKobold(html, (prompt) => (prompt.endsWith('Bob:') ? ' Bob here.' : ' Ann here.'), 10);
    const page = await browser.newPage();
    await page.goto(demo.url);
    await page.locator('[data-testid="status"].connected').waitFor();
    await page.getByTestId('mode').selectOption('chat');
    await page.getByRole('button', { name: 'Settings' }).click();
    await page.getByLabel('AI name').fill('Ann');
    await page.getByLabel('AI name').dispatchEvent('change');
    await page.getByTestId('group-names').fill('Bob');
    await page.getByTestId('group-names').dispatchEvent('change');
    await page.getByTestId('prompt').fill('Hello both');
    await page.getByTestId('generate').click();
    await page.getByTestId('generate').and(page.locator(':enabled')).waitFor();
    await page.getByTestId('generate').click(); // empty input: the next character speaks
    await page.getByTestId('generate').and(page.locator(':enabled')).waitFor();
    await page.getByTestId('generate').click();
    await page.getByTestId('generate').and(page.locator(':enabled')).waitFor();
    const turns = await page
      .locator('.turn')
      .evaluateAll((els) =>
        els.map((el) => `${el.querySelector('strong')?.textContent}: ${el.querySelector('.turn-text')?.textContent}`),
      );
    assert.deepEqual(turns, ['You: Hello both', 'Ann: Ann here.', 'Bob: Bob here.', 'Ann: Ann here.']);
    await page.close();
    await demo.close();
  });

  it('renders Markdown in instruct replies as elements, and can be switched off', async () => {
    const reply = 'Here you go:\n\n```js\nconst a = "<b>1</b>";\n```\n\n- one\n- **two**';
    const demo = await startDemoKobold(html, () => reply, 5);
    const page = await browser.newPage();
    await page.goto(demo.url);
    await page.locator('[data-testid="status"].connected').waitFor();
    await page.getByTestId('mode').selectOption('instruct');
    await page.getByTestId('prompt').fill('Show code');
    await page.getByTestId('generate').click();
    await page.getByTestId('generate').and(page.locator(':enabled')).waitFor();
    const turn = page.locator('.turn.assistant').last();
    assert.equal(await turn.locator('pre code').textContent(), 'const a = "<b>1</b>";');
    assert.equal(await turn.locator('pre b').count(), 0, 'HTML in replies stays text');
    assert.equal(await turn.locator('li').count(), 2);
    assert.equal(await turn.locator('li strong').textContent(), 'two');
    await page.getByRole('button', { name: 'Settings' }).click();
    await page.getByTestId('markdown-toggle').uncheck();
    assert.match((await turn.locator('.turn-text').textContent()) ?? '', /```js/);
    await page.close();
    await demo.close();
  });
});
