import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import type { RunningServer } from '../../src/main.ts';
import { type BufferingProxy, startBufferingProxy } from '../support/buffering-proxy.ts';
import { withDeadline } from '../support/deadline.ts';
import { LONG_RUN_MODEL_HPARAMS, testModelPath } from '../support/test-model.ts';
import { banEndTokens, postJson, startTestServer } from '../support/test-server.ts';
import { launchBrowser, outputText, watchErrors } from './support/browser.ts';
import { ensureWebBuild } from './support/web-build.ts';

// The web app served through a proxy that holds each response until it ends (or 16 KB), in front of the real
// server: the SDK notices the held-back stream, the app says so in a note (not an error), and the reply still
// grows while the server generates, ending exactly as the server's text. The test stops the generation (an abort
// on the server, as another client could send) once the page has shown it grow, so no model pace is assumed.

let server: RunningServer;
let proxy: BufferingProxy;
let browser: Browser;

describe('web app through a buffering proxy', { timeout: 240_000 }, () => {
  before(async () => {
    await ensureWebBuild();
    // A model slow enough, with a 4k training context, that a reply runs for several seconds of polls.
    const modelPath = testModelPath('F16', { hparams: LONG_RUN_MODEL_HPARAMS });
    server = await startTestServer({ modelPath, contextSize: 4096, heartbeatMs: 300 });
    proxy = await startBufferingProxy({ target: server.url });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await proxy?.close();
    await server?.close();
  });

  it('notes the switch to polling and shows the reply growing while it is generated', async () => {
    const page = await browser.newPage();
    const errors = watchErrors(page);
    // The app's own origin is the proxy; the server's heartbeat is 300 ms, and the app is told so.
    const config = JSON.stringify({ provider: 'kindling', streaming: 'sse', heartbeatSeconds: 0.3 });
    await page.addInitScript(`localStorage.setItem('kindling.connection', ${JSON.stringify(config)})`);
    // A random-weight model may end at any token: its end tokens are banned, so the reply is long enough to watch.
    let genkey = '';
    await page.route('**/api/extra/generate/stream', async (route) => {
      const body = JSON.parse(route.request().postData() ?? '{}') as Record<string, unknown>;
      genkey = String(body['genkey']);
      await route.continue({ postData: JSON.stringify({ ...body, logit_bias: banEndTokens(server) }) });
    });
    await page.goto(proxy.url);
    await page.getByTestId('status').filter({ hasText: 'ctx' }).waitFor({ timeout: 30_000 });
    await page.getByRole('button', { name: 'Settings' }).click();
    // Long enough (seconds on a fast machine) for several 500 ms polls to land before the test stops it.
    await page.getByTestId('context-size').fill('4096');
    await page.getByTestId('max-length').fill('2000');
    await page.getByRole('button', { name: 'Connect' }).first().click();
    await page.getByTestId('prompt').fill('Once upon a time');
    await page.getByTestId('generate').click();

    // Distinct lengths of the live reply and when they were seen, every frame until the reply is committed.
    const committed = withDeadline(
      page.evaluate(`new Promise((resolve) => {
        const seen = (window.__growth = []);
        const tick = () => {
          const live = document.querySelector('[data-testid="live-reply"]');
          if (live === null && seen.length > 0) return resolve(seen);
          const n = live?.textContent?.length ?? 0;
          if (n > 0 && seen.at(-1)?.[0] !== n) seen.push([n, Date.now()]);
          requestAnimationFrame(tick);
        };
        tick();
      })`),
      120_000,
      'the reply to finish',
    ) as Promise<Array<[number, number]>>;
    // Once the page has shown the reply grow three times, the generation is stopped on the server; the moment
    // the server's own view calls it done bounds which growths happened while it generated.
    let doneAt = Number.POSITIVE_INFINITY;
    let stopped = false;
    const watcher = (async () => {
      for (;;) {
        const shown = Number(await page.evaluate('window.__growth?.length ?? 0'));
        if (!stopped && genkey !== '' && shown >= 3) {
          stopped = true;
          await postJson(`${server.url}/api/extra/abort`, { genkey });
        }
        if (genkey !== '') {
          const record = (await postJson(`${server.url}/api/extra/generate/check`, { genkey })).body.results[0];
          if (record.status === 'done') {
            doneAt = Date.now();
            return;
          }
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    const growth = await committed;
    await withDeadline(watcher, 30_000, 'the server to report the generation done');
    await page.getByTestId('generate').and(page.locator(':enabled')).waitFor({ timeout: 30_000 });

    const serverText: string = (await postJson(`${server.url}/api/extra/generate/check`, { genkey })).body.results[0]
      .text;
    assert.ok(serverText.length > 200, `${serverText.length} characters`);
    const output = await outputText(page);
    assert.ok(output.endsWith(serverText), 'the reply is exactly the server text');
    const live = growth.filter(([, at]) => at < doneAt);
    assert.ok(live.length >= 3, `the reply grew ${live.length} times while the server generated`);
    const notice = page.getByTestId('notice');
    assert.equal(await notice.getAttribute('class'), 'notice info');
    assert.match((await notice.textContent()) ?? '', /proxy .* holds the stream back/);
    assert.deepEqual(errors, []);
    await page.close();
  });
});
