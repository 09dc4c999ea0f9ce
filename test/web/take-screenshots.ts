// Regenerates docs/screenshots/*.png: `node --import tsx test/web/take-screenshots.ts`.
// Not a test (no assertions); it drives the built app against a scripted same-origin Kobold server.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { createSession, createWorldInfoEntry, newId } from '../../web/src/model/session.ts';
import { exportSession } from '../../web/src/prompt/session-file.ts';
import { launchBrowser } from './support/browser.ts';
import { makeCardPng } from './support/card-png.ts';
import { startDemoKobold } from './support/demo-kobold.ts';
import { ensureWebBuild } from './support/web-build.ts';

const root = join(import.meta.dirname, '..', '..');
const outDir = join(root, 'docs', 'screenshots');
const tmp = join(root, 'test', '.tmp');
mkdirSync(outDir, { recursive: true });
mkdirSync(tmp, { recursive: true });

const storyText = `The lighthouse on Carrow Point had been dark for eleven years when Mara climbed its stairs with a box of matches and her grandmother's key.

The door gave with a groan. Inside, the air tasted of salt and old paper. Logbooks lined the walls, their spines swollen with damp, and on the desk lay one still open, the ink of its last entry barely faded.

"Light seen to the north again," she read aloud. "Not ours. Not any ship's."`;

const reply = ` She turned the page, but the rest of the book was blank, as if whoever had written those words had simply stood up from the desk and walked out into the night.

Above her, something moved. A slow, deliberate creak, like a foot testing a floorboard. Mara held her breath and counted the seconds, the way her grandmother had taught her to count between lightning and thunder.`;

const story = createSession({
  name: 'The Lighthouse Keeper',
  mode: 'story',
  memory:
    'Mara, 28, returns to the island of her childhood after her grandmother’s death. Gothic, quiet, slow-burning.',
  authorsNote: 'Keep the tension rising; short sentences at moments of fear.',
  turns: [{ id: newId(), role: 'user', text: storyText }],
  worldInfo: [
    createWorldInfoEntry({
      keys: ['lighthouse', 'Carrow Point'],
      content: 'The Carrow Point lighthouse was decommissioned after the wreck of the Ardent.',
      comment: 'lighthouse',
    }),
    createWorldInfoEntry({
      keys: ['grandmother'],
      content: 'Edda Vale kept the light for forty years and never spoke of the last one.',
      comment: 'Edda',
    }),
  ],
});
story.gen.maxLength = 160;

async function importJson(page: Page, name: string, text: string): Promise<void> {
  const file = join(tmp, name);
  writeFileSync(file, text);
  await page.getByTestId('import').setInputFiles(file);
}

const html = await ensureWebBuild();
const chatReply = ` Your brother? She studies you for a long moment, then turns back to the wheel. "Aren Vale. Best navigator I ever had, until he walked off this ship in Port Tamsin and never came back. If you know where he is, stowaway, you had better start talking."`;
const demo = await startDemoKobold(html, (prompt) => (prompt.includes('Captain Ione:') ? chatReply : reply), 45);
const browser = await launchBrowser();
try {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    colorScheme: 'dark',
    deviceScaleFactor: 1,
  });
  const page = await context.newPage();
  await page.goto(demo.url);
  await page.locator('[data-testid="status"].connected').waitFor();
  await importJson(page, 'story.kindling.json', exportSession(story));
  await page.getByTestId('output').filter({ hasText: 'Carrow Point' }).waitFor();
  await page.getByTestId('notice').getByRole('button').click();
  await page.getByTestId('generate').click();
  await page.waitForFunction(
    () => (document.querySelector('[data-testid="live-reply"]')?.textContent ?? '').length > 180,
  );
  await page.screenshot({ path: join(outDir, 'story-streaming.png') });
  await page.getByTestId('generate').and(page.locator(':enabled')).waitFor();

  await page.getByRole('button', { name: 'Context' }).click();
  await page.screenshot({ path: join(outDir, 'context-panel.png') });

  await page.getByTestId('mode').selectOption('instruct');
  await page.getByRole('button', { name: 'Settings' }).click();
  await page.screenshot({ path: join(outDir, 'settings-panel.png') });

  const card = {
    spec: 'chara_card_v2',
    data: {
      name: 'Captain Ione',
      description: '{{char}} commands the airship Meridian and distrusts anyone who arrives by sea.',
      personality: 'dry, brave, secretly sentimental',
      scenario: '{{user}} has stowed away aboard the Meridian.',
      first_mes:
        'Well. A stowaway. You have until we clear the cloud bank to tell me why I shouldn’t drop you over the side.',
      character_book: {
        entries: [{ keys: ['Meridian'], content: 'The Meridian is a three-masted airship with a brass hull.' }],
      },
    },
  };
  const cardFile = join(tmp, 'ione.png');
  writeFileSync(cardFile, makeCardPng({ chara: card }));
  await page.getByTestId('import').setInputFiles(cardFile);
  await page.getByTestId('output').filter({ hasText: 'stowaway' }).waitFor();
  await page.getByTestId('notice').getByRole('button').click();
  await page.getByTestId('prompt').fill('I was looking for my brother. He signed on as your navigator.');
  await page.getByTestId('generate').click();
  await page.waitForFunction(
    () => (document.querySelector('[data-testid="live-reply"]')?.textContent ?? '').length > 120,
  );
  await page.getByRole('button', { name: 'Sessions' }).click();
  await page.screenshot({ path: join(outDir, 'chat-sessions.png') });
  await page.getByTestId('generate').and(page.locator(':enabled')).waitFor();
  await context.close();

  const mobile = await browser.newContext({
    viewport: { width: 390, height: 844 },
    colorScheme: 'light',
    deviceScaleFactor: 1,
  });
  const phone = await mobile.newPage();
  await phone.goto(demo.url);
  await phone.locator('[data-testid="status"].connected').waitFor();
  await importJson(phone, 'story.kindling.json', exportSession(story));
  await phone.getByTestId('output').filter({ hasText: 'Carrow Point' }).waitFor();
  await phone.getByTestId('notice').getByRole('button').click();
  await phone.screenshot({ path: join(outDir, 'mobile-light.png') });
  await mobile.close();
  console.log(`screenshots written to ${outDir}`);
} finally {
  await browser.close();
  await demo.close();
}
