import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { startFakeOpenRouter } from '../support/fake-providers/index.ts';
import { launchBrowser, outputText, skipReason } from './support/browser.ts';
import { serveStaticApp } from './support/static-app.ts';
import { ensureWebBuild, webIndex } from './support/web-build.ts';

// Connecting: a Kobold URL that only speaks OpenAI is offered the switch, settings and the key survive a reload,
// Enter sends, and the page opened from file:// explains what to do instead of failing silently.

let browser: Browser;
let app: { url: string; close(): Promise<void> };

describe('web client connection handling', { skip: skipReason, timeout: 60_000 }, () => {
  before(async () => {
    app = await serveStaticApp(await ensureWebBuild());
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
});
