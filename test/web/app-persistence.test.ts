import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { startFakeOpenRouter } from '../support/fake-providers/index.ts';
import { launchBrowser, outputText } from './support/browser.ts';
import { serveStaticApp } from './support/static-app.ts';
import { ensureWebBuild } from './support/web-build.ts';

// Keeping the user's work: a tab closed mid-reply (no unload handlers run, as in a crash) comes back with the
// streamed text, and two tabs editing one session never overwrite each other silently.

let browser: Browser;
let app: { url: string; close(): Promise<void> };

async function connectTo(page: Page, url: string): Promise<void> {
  await page.getByTestId('provider').selectOption('openai');
  await page.getByTestId('endpoint-url').fill(url);
  await page.getByTestId('endpoint-url').dispatchEvent('change');
  await page.getByTestId('api-key').fill('k');
  await page.getByTestId('connect').click();
  await page.locator('[data-testid="status"].connected').waitFor({ timeout: 10_000 });
}

describe('web client persistence', { timeout: 90_000 }, () => {
  before(async () => {
    app = await serveStaticApp(await ensureWebBuild());
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await app?.close();
  });

  it('a tab killed mid-stream comes back with the text received so far', async () => {
    const fake = await startFakeOpenRouter({ tokenIntervalMs: 30 });
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(app.url);
    await connectTo(page, `${fake.url}/api/v1`);
    await page.getByRole('button', { name: 'Settings' }).click();
    await page.getByTestId('max-length').fill('400');
    await page.getByTestId('prompt').fill('Begin.');
    await page.getByTestId('generate').click();
    await page.waitForFunction(
      () => (document.querySelector('[data-testid="live-reply"]')?.textContent ?? '').length > 20,
    );
    await page.waitForTimeout(1500); // drafts are written once a second
    const partial = (await page.getByTestId('live-reply').textContent()) ?? '';
    await page.close({ runBeforeUnload: false });

    const again = await context.newPage();
    await again.goto(app.url);
    await again.getByTestId('turn-error').waitFor();
    assert.match((await again.getByTestId('turn-error').textContent()) ?? '', /Interrupted/);
    const text = await outputText(again);
    assert.ok(text.startsWith('Begin.'));
    assert.ok(text.includes(partial.slice(0, 20)), 'the streamed text survived');
    await context.close();
    await fake.close();
  });

  it('two tabs editing one session: the stale one saves a copy instead of overwriting', async () => {
    const context = await browser.newContext();
    const a = await context.newPage();
    await a.goto(app.url);
    await a.getByRole('button', { name: 'Context' }).click();
    await a.getByTestId('memory').fill('from tab A');
    await a.waitForTimeout(600);
    const b = await context.newPage();
    await b.goto(app.url);
    await b.getByRole('button', { name: 'Context' }).click();
    await b.getByTestId('memory').waitFor();
    assert.equal(await b.getByTestId('memory').inputValue(), 'from tab A');
    await a.getByTestId('memory').fill('from tab A, edited');
    await a.waitForTimeout(600);
    await b.getByTestId('memory').fill('from tab B');
    await b.getByTestId('notice').waitFor();
    assert.match((await b.getByTestId('notice').textContent()) ?? '', /changed in another tab.*conflict copy/);
    await b.getByRole('button', { name: 'Sessions' }).click();
    const names = await b.getByTestId('session-list').locator('li .name').allTextContents();
    assert.deepEqual(names.sort(), ['Untitled', 'Untitled (conflict copy)']);
    // Tab A's text is still stored under the original session.
    const c = await context.newPage();
    await c.goto(app.url);
    await c.getByRole('button', { name: 'Sessions' }).click();
    await c.getByTestId('session-list').getByRole('button', { name: 'Untitled', exact: true }).click();
    await c.getByRole('button', { name: 'Context' }).click();
    assert.equal(await c.getByTestId('memory').inputValue(), 'from tab A, edited');
    await context.close();
  });

  it('backs up every session to one file and restores them in an empty browser', async () => {
    const first = await browser.newContext({ acceptDownloads: true });
    const page = await first.newPage();
    await page.goto(app.url);
    await page.getByTestId('prompt').fill('draft one');
    await page.getByTestId('new-session').click();
    await page.getByRole('button', { name: 'Sessions' }).click();
    await page.getByTestId('session-list').locator('li').nth(1).waitFor();
    const download = page.waitForEvent('download');
    await page.getByTestId('backup').click();
    // Downloads are deleted with their context: keep a copy for the second browser.
    const file = join(import.meta.dirname, '..', '.tmp', 'kindling-backup-test.json');
    await (await download).saveAs(file);
    await first.close();

    const fresh = await browser.newContext();
    const other = await fresh.newPage();
    await other.goto(app.url);
    await other.getByTestId('import').setInputFiles(file);
    await other.getByTestId('notice').filter({ hasText: 'Restored 2 sessions' }).waitFor();
    await other.getByRole('button', { name: 'Sessions' }).click();
    assert.equal(
      await other.getByTestId('session-list').locator('li').count(),
      3,
      'its own session plus the two restored',
    );
    await fresh.close();
  });
});
