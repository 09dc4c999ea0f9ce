import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import type { RunningServer } from '../../src/main.ts';
import { freePort } from '../support/free-port.ts';
import { startTestServer } from '../support/test-server.ts';
import { launchBrowser, outputText } from './support/browser.ts';
import { ensureWebBuild } from './support/web-build.ts';

// The web client given two URLs, the first with nothing listening: it connects and generates through the second.

let server: RunningServer;
let browser: Browser;

describe('web client with several URLs', { timeout: 120_000 }, () => {
  before(async () => {
    await ensureWebBuild();
    server = await startTestServer({ contextSize: 2048, parallel: 1 });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  it('a comma-separated URL list whose first URL is dead connects to the second and streams', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const page = await browser.newPage();
    await page.goto(server.url);
    await page.getByTestId('provider').selectOption('kobold');
    await page.getByTestId('endpoint-url').fill(`${dead}, ${server.url}`);
    await page.getByTestId('endpoint-url').dispatchEvent('change');
    await page.getByTestId('connect').click();
    await page.locator('[data-testid="status"].connected').waitFor({ timeout: 15_000 });
    const status = (await page.getByTestId('status').textContent()) ?? '';
    assert.match(status, /Kindling/);
    assert.match(status, /ctx 2048/);

    const input = 'Hello from two URLs.';
    await page.getByTestId('prompt').fill(input);
    await page.getByTestId('generate').click();
    await page.getByTestId('generate').and(page.locator(':enabled')).waitFor({ timeout: 30_000 });
    const text = await outputText(page);
    assert.ok(text.startsWith(input), text);
    assert.ok(text.slice(input.length).trim().length > 0, 'a reply follows the input');

    await page.reload();
    assert.equal(await page.getByTestId('endpoint-url').inputValue(), `${dead}, ${server.url}`);
    await page.close();
  });
});
