import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { waitUntil, withDeadline } from '../support/deadline.ts';
import { type FakeKobold, startFakeKobold } from '../support/fake-providers/index.ts';
import { launchBrowser, outputText, watchErrors } from './support/browser.ts';
import { serveStaticApp } from './support/static-app.ts';
import { ensureWebBuild } from './support/web-build.ts';

// The app on a Kobold server through the SDK: a Generate pressed before the automatic connect has finished, and
// polling mode (the SDK's KoboldClient.poll) showing text as it grows and stopping the server's generation.

let browser: Browser;
let app: { url: string; close(): Promise<void> };

async function idle(page: Page): Promise<void> {
  await page.getByTestId('generate').and(page.locator(':enabled')).waitFor({ timeout: 20_000 });
}

/** Opens the app with a Kobold connection saved, so it connects on load. */
async function openWithKobold(page: Page, fake: FakeKobold, streaming: 'sse' | 'poll'): Promise<void> {
  const config = JSON.stringify({ provider: 'kobold', baseUrl: fake.url, streaming });
  await page.addInitScript(`localStorage.setItem('kindling.connection', ${JSON.stringify(config)})`);
  await page.goto(app.url);
}

const maxLengthOf = (fake: FakeKobold, path: string) =>
  (fake.requests.find((r) => r.path === path)?.body as { max_length?: number } | undefined)?.max_length;

describe('web app on a Kobold server', () => {
  before(async () => {
    app = await serveStaticApp(await ensureWebBuild());
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await app?.close();
  });

  it('a Generate pressed while the automatic connect still runs waits for it, then generates', async () => {
    const fake = await startFakeKobold({ flavor: 'koboldcpp' });
    const page = await browser.newPage();
    const errors = watchErrors(page);
    // Slows the connect down, so the click lands while it runs.
    await page.route(`${fake.url}/api/v1/model`, async (route) => {
      await new Promise((resolve) => setTimeout(resolve, 1200));
      await route.continue();
    });
    await openWithKobold(page, fake, 'sse');
    await page.locator('[data-testid="status"].connecting').waitFor();
    await page.getByTestId('prompt').fill('Early.');
    await page.getByTestId('generate').click();
    assert.equal(await page.getByTestId('status').getAttribute('class'), 'status connecting');
    await page.locator('[data-testid="status"].connected').waitFor({ timeout: 30_000 });
    await idle(page);
    const length = maxLengthOf(fake, '/api/extra/generate/stream');
    assert.ok(length !== undefined && length > 0, 'the generation was sent once connected');
    assert.ok((await outputText(page)).includes(fake.expectedText(1, length)));
    assert.deepEqual(errors, []);
    await page.close();
    await fake.close();
  });

  it('polling mode shows the text as it grows, and Stop aborts the generation on the server', async () => {
    const fake = await startFakeKobold({ flavor: 'koboldcpp', tokenIntervalMs: 12 });
    const page = await browser.newPage();
    await openWithKobold(page, fake, 'poll');
    await page.locator('[data-testid="status"].connected').waitFor({ timeout: 30_000 });
    await page.getByTestId('prompt').fill('Poll me.');
    await page.getByTestId('generate').click();
    // Distinct lengths of the live reply, sampled every frame until it is committed.
    const lengths = (await withDeadline(
      page.evaluate(`new Promise((resolve) => {
        const seen = [];
        const tick = () => {
          const live = document.querySelector('[data-testid="live-reply"]');
          if (live === null && seen.length > 0) return resolve(seen);
          const n = live?.textContent?.length ?? 0;
          if (n > 0 && seen.at(-1) !== n) seen.push(n);
          requestAnimationFrame(tick);
        };
        tick();
      })`),
      60_000,
      'the polled reply to finish',
    )) as number[];
    await idle(page);
    const length = maxLengthOf(fake, '/api/v1/generate');
    assert.ok(length !== undefined && (await outputText(page)).includes(fake.expectedText(1, length)));
    assert.ok(lengths.length >= 2, `the live reply grew in steps (${lengths.join(', ')})`);
    assert.equal(fake.requests.filter((r) => r.path === '/api/extra/generate/stream').length, 0);

    await page.getByTestId('generate').click();
    await page.waitForFunction(
      () => (document.querySelector('[data-testid="live-reply"]')?.textContent ?? '').length > 3,
    );
    await page.getByTestId('stop').click();
    await idle(page);
    const polled = fake.requests.filter((r) => r.path === '/api/v1/generate').at(-1);
    const genkey = (polled?.body as { genkey?: string } | undefined)?.genkey;
    await waitUntil(() => fake.aborts.length > 0, 5000, 'the abort to reach the server');
    assert.deepEqual(fake.aborts, [genkey]);
    assert.equal(fake.generations.get(genkey ?? '')?.done, true);
    await page.close();
    await fake.close();
  });
});
