import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import type { RunningServer } from '../../src/main.ts';
import { startTestServer } from '../support/test-server.ts';
import { launchBrowser, outputText } from './support/browser.ts';
import { ensureWebBuild } from './support/web-build.ts';

// A password-protected Kindling server (like KoboldCpp --password): the app asks for the key on connect, says
// clearly when it is wrong, and works once it is right.

let server: RunningServer;
let browser: Browser;

describe('web client on a password-protected server', { timeout: 120_000 }, () => {
  before(async () => {
    await ensureWebBuild();
    server = await startTestServer({ password: 'open-sesame', parallel: 1 });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  it('asks for the key, reports a wrong one as 401, then generates', async () => {
    const page = await browser.newPage();
    await page.goto(server.url);
    await page.locator('[data-testid="status"].error').waitFor({ timeout: 15_000 });
    assert.match((await page.locator('.side .error').textContent()) ?? '', /password-protected: enter its password/);
    assert.equal(await page.evaluate('document.activeElement?.dataset.testid'), 'api-key', 'the key field has focus');

    await page.getByTestId('api-key').fill('wrong');
    await page.getByTestId('connect').click();
    await page.locator('.side .error').filter({ hasText: 'HTTP 401' }).waitFor();
    assert.match((await page.locator('.side .error').textContent()) ?? '', /rejected the API key \(HTTP 401\)/);

    await page.getByTestId('api-key').fill('open-sesame');
    await page.getByTestId('connect').click();
    await page.locator('[data-testid="status"].connected').waitFor();
    await page.getByRole('button', { name: 'Settings' }).click();
    await page.getByTestId('max-length').fill('8');
    await page.getByTestId('prompt').fill('Let me in.');
    await page.getByTestId('generate').click();
    await page.getByTestId('generate').and(page.locator(':enabled')).waitFor({ timeout: 30_000 });
    assert.ok((await outputText(page)).startsWith('Let me in.'));
    assert.equal(await page.getByTestId('notice').count(), 0, 'no error');
    await page.close();
  });
});
