import { existsSync } from 'node:fs';
import { type Browser, chromium, type Page } from 'playwright-core';

// Debian's chromium, driven by playwright-core (no downloaded browsers); `.ci/run` installs it. A missing
// binary fails the browser tests with the install hint: a skip would let a machine without it pass unseen.
export const chromiumPath = '/usr/bin/chromium';

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(chromiumPath))
    throw new Error(`${chromiumPath} is not installed: run \`apt-get install -y chromium\` (.ci/run does)`);
  return chromium.launch({
    executablePath: chromiumPath,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Collects page errors so a test can assert the app threw nothing. */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource|net::ERR/.test(m.text())) errors.push(m.text());
  });
  return errors;
}

/** Output text without the live reply's cursor glyphs. */
export async function outputText(page: Page): Promise<string> {
  return (await page.getByTestId('output').textContent()) ?? '';
}

/**
 * Clicks Stop and returns the milliseconds, measured inside the page, from the click event to the moment the
 * app is idle again (Generate re-enabled, live reply gone). Measuring in the page keeps the harness's own
 * round trips (which grow on a loaded CI machine) out of the figure.
 */
export async function clickStopAndMeasure(page: Page): Promise<number> {
  await page.evaluate(`(() => {
    window.__stopMs = undefined;
    const stop = document.querySelector('[data-testid="stop"]');
    stop.addEventListener('click', () => {
      const t0 = performance.now();
      const check = () => {
        const gen = document.querySelector('[data-testid="generate"]');
        if (!gen.disabled && !document.querySelector('[data-testid="live-reply"]')) window.__stopMs = performance.now() - t0;
        else requestAnimationFrame(check);
      };
      check();
    }, { once: true, capture: true });
  })()`);
  await page.getByTestId('stop').click();
  // A function, not a string: the server's CSP forbids the eval a string predicate would need.
  const handle = await page.waitForFunction(() => (window as unknown as { __stopMs?: number }).__stopMs);
  return (await handle.jsonValue()) as number;
}
