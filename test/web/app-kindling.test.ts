import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { RunningServer } from '../../src/main.ts';
import { startTestServer } from '../support/test-server.ts';
import { clickStopAndMeasure, launchBrowser, outputText, watchErrors } from './support/browser.ts';
import { ensureWebBuild } from './support/web-build.ts';

// The web client served by the real Kindling server (`/`), generating with the real engine on a tiny
// random-weight model: connect, stream in every mode, stop, retry/undo/redo, reload, export → import.

let server: RunningServer;
let browser: Browser;

async function openApp(context?: BrowserContext): Promise<{ page: Page; errors: string[]; context: BrowserContext }> {
  const ctx = context ?? (await browser.newContext({ acceptDownloads: true }));
  const page = await ctx.newPage();
  const errors = watchErrors(page);
  await page.goto(server.url);
  await page.getByTestId('status').filter({ hasText: 'ctx' }).waitFor({ timeout: 15_000 });
  return { page, errors, context: ctx };
}

async function idle(page: Page): Promise<void> {
  await page.getByTestId('generate').and(page.locator(':enabled')).waitFor({ timeout: 30_000 });
}

async function setMaxLength(page: Page, n: number): Promise<void> {
  await page.getByRole('button', { name: 'Settings' }).click();
  await page.getByTestId('max-length').fill(String(n));
  await page.getByRole('button', { name: 'Connect' }).first().click();
}

describe('web client on the real Kindling server', { timeout: 180_000 }, () => {
  before(async () => {
    await ensureWebBuild();
    server = await startTestServer({ contextSize: 2048, parallel: 1 });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  it('auto-connects to its own origin and shows server, model and context size', async () => {
    const { page, errors, context } = await openApp();
    const status = (await page.getByTestId('status').textContent()) ?? '';
    assert.match(status, /Kindling/);
    assert.match(status, /ctx 2048/);
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('streams a reply in each mode', async () => {
    const { page, errors, context } = await openApp();
    await setMaxLength(page, 24);
    for (const mode of ['story', 'chat', 'instruct', 'adventure']) {
      await page.getByTestId('mode').selectOption(mode);
      const input = `Hello from ${mode} mode.`;
      await page.getByTestId('prompt').fill(input);
      await page.getByTestId('generate').click();
      await idle(page);
      const text = await outputText(page);
      assert.ok(text.includes(input), `${mode}: the input is in the output`);
      const reply = text.slice(text.lastIndexOf(input) + input.length);
      assert.ok(reply.trim().length > 0, `${mode}: a reply follows the input`);
      // Budget = the server's 2048-token context - max length 24, measured with the server's tokenizer (no ≈).
      assert.match((await page.getByTestId('stats').textContent()) ?? '', /prompt \d+ \/ 2024 tokens · \d+ tokens/);
    }
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('impersonate writes the user’s next message into the input box, not the chat', async () => {
    const { page, context } = await openApp();
    await setMaxLength(page, 12);
    await page.getByTestId('mode').selectOption('chat');
    await page.getByTestId('prompt').fill('Hi!');
    await page.getByTestId('generate').click();
    await idle(page);
    const before = await outputText(page);
    await page.getByTestId('impersonate').click();
    await idle(page);
    assert.equal(await outputText(page), before, 'no turn added');
    assert.ok(
      (await page.getByTestId('prompt').inputValue()).length > 0,
      'the input box holds the impersonated message',
    );
    await context.close();
  });

  it('Stop halts within 200 ms and keeps the partial text', async (t) => {
    const { page, context } = await openApp();
    await page.getByRole('button', { name: 'Settings' }).click();
    await page.getByTestId('max-length').fill('1500');
    // A random-weight model samples end-of-text at random: ban it so the reply is surely still running.
    await page.getByTestId('ban-eos').check();
    await page.getByRole('button', { name: 'Connect' }).first().click();
    await page.getByTestId('prompt').fill('A long tale begins.');
    // A random-weight model can sample end-of-text early; generate again (continuing) until a reply is running.
    let state = 'ended';
    for (let attempt = 0; attempt < 5 && state !== 'live'; attempt++) {
      await page.evaluate('window.__sawBusy = false');
      await page.getByTestId('generate').click();
      state = (await (
        await page
          .waitForFunction(
            () => {
              const w = window as unknown as { __sawBusy: boolean };
              const live = document.querySelector('[data-testid="live-reply"]');
              const gen = document.querySelector<HTMLButtonElement>('[data-testid="generate"]')!;
              if (gen.disabled) w.__sawBusy = true;
              if (live && (live.textContent ?? '').length > 5) return 'live';
              return w.__sawBusy && !gen.disabled ? 'ended' : false;
            },
            undefined,
            { polling: 50, timeout: 20_000 },
          )
          .catch(async (error: Error) => {
            const why = `${await page.getByTestId('stats').textContent()} | ${await page.locator('.notice').allTextContents()} | live: ${await page.getByTestId('live-reply').count()}`;
            throw new Error(`${error.message}: ${why}`);
          })
      ).jsonValue()) as string;
      if (state !== 'live')
        t.diagnostic(`attempt ${attempt + 1} ended early: ${await page.getByTestId('stats').textContent()}`);
    }
    assert.equal(state, 'live', 'a reply is streaming');
    const stopMs = await clickStopAndMeasure(page);
    t.diagnostic(`stop → idle in ${stopMs.toFixed(0)} ms (measured in the page)`);
    assert.ok(stopMs < 200, `stopped in ${stopMs.toFixed(0)} ms`);
    const partial = await outputText(page);
    assert.ok(partial.length > 'A long tale begins.'.length + 5, 'partial text kept');
    assert.match((await page.getByTestId('stats').textContent()) ?? '', /ended: abort/);
    // The server is free again: the next request is answered, not "busy".
    await setMaxLength(page, 8);
    await page.getByTestId('generate').click();
    await idle(page);
    assert.ok((await outputText(page)).length > partial.length);
    await context.close();
  });

  it('retry (keeping both versions), undo and redo', async () => {
    const { page, context } = await openApp();
    await page.getByRole('button', { name: 'Settings' }).click();
    await page.getByTestId('max-length').fill('16');
    // Each reply must have text: with random weights the model can sample end-of-text first, and then two
    // undos went back past the seed text (seen once in a full run here).
    await page.getByTestId('ban-eos').check();
    await page.getByRole('button', { name: 'Connect' }).first().click();
    await page.getByTestId('prompt').fill('Seed text.');
    await page.getByTestId('generate').click();
    await idle(page);
    const first = await outputText(page);
    await page.getByTestId('retry').click();
    await idle(page);
    const second = await outputText(page);
    assert.ok(second.startsWith('Seed text.'));
    await page.getByTestId('undo').click();
    assert.equal(await outputText(page), first, 'one undo restores the reply before the retry');
    await page.getByTestId('redo').click();
    assert.equal(await outputText(page), second);
    await page.getByTestId('undo').click();
    await page.getByTestId('undo').click();
    assert.equal(await outputText(page), 'Seed text.');
    // Retry kept both versions of the reply: switch between them.
    await page.getByTestId('redo').click();
    await page.getByTestId('redo').click();
    assert.equal(await outputText(page), second);
    assert.equal(await page.getByTestId('variant-count').textContent(), '2/2');
    await page.getByTestId('variant-prev').click();
    assert.equal(await outputText(page), first);
    await page.getByTestId('variant-next').click();
    assert.equal(await outputText(page), second);
    await context.close();
  });

  it('reload restores the session, and export → import round-trips it', async () => {
    const { page, context } = await openApp();
    await setMaxLength(page, 12);
    await page.getByRole('button', { name: 'Context' }).click();
    await page.getByTestId('memory').fill('Remember the lighthouse.');
    await page.getByTestId('prompt').fill('Keep this.');
    await page.getByTestId('generate').click();
    await idle(page);
    const text = await outputText(page);
    await page.waitForTimeout(500); // autosave debounce
    await page.reload();
    await page.getByTestId('output').filter({ hasText: 'Keep this.' }).waitFor();
    assert.equal(await outputText(page), text);

    const download = page.waitForEvent('download');
    await page.getByTestId('export').click();
    const file = await (await download).path();
    await page.getByTestId('new-session').click();
    await page.waitForFunction(
      () => !document.querySelector('[data-testid="output"]')?.textContent?.includes('Keep this.'),
    );
    await page.getByTestId('import').setInputFiles(file);
    await page.getByTestId('output').filter({ hasText: 'Keep this.' }).waitFor();
    assert.equal(await outputText(page), text);
    await page.getByRole('button', { name: 'Context' }).click();
    assert.equal(await page.getByTestId('memory').inputValue(), 'Remember the lighthouse.');
    await page.getByRole('button', { name: 'Sessions' }).click();
    assert.equal(await page.getByTestId('session-list').locator('li').count(), 3, 'original, new, imported');
    await context.close();
  });
});
