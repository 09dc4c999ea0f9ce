import { existsSync } from 'node:fs';
import { type Browser, chromium, type Page } from 'playwright-core';

// Debian's chromium, driven by playwright-core (no downloaded browsers). Tests skip with this reason when the
// binary is missing; `.ci/run` installs it.
export const chromiumPath = '/usr/bin/chromium';
export const skipReason = existsSync(chromiumPath)
  ? undefined
  : `${chromiumPath} is not installed (apt-get install -y chromium); browser tests skipped`;

export async function launchBrowser(): Promise<Browser> {
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
