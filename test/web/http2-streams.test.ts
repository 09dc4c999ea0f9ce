import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import type { RunningServer } from '../../src/main.ts';
import { withDeadline } from '../support/deadline.ts';
import { slowTestModelPath } from '../support/test-model.ts';
import { banEndTokens, startTestServer } from '../support/test-server.ts';
import { launchBrowser } from './support/browser.ts';

const TLS = join(import.meta.dirname, '..', 'fixtures', 'tls');

/** Runs in the page: ten Kobold streams at once, with when each saw its first event and its end. */
const TEN_STREAMS = `async (logitBias) => {
  const one = async (i) => {
    const response = await fetch('/api/extra/generate/stream', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'Story ' + i, max_length: 40, sampler_seed: i, logit_bias: logitBias }),
    });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let text = '';
    let firstEventAt = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      if (!firstEventAt && text.includes('event: message')) firstEventAt = performance.now();
    }
    const endedAt = performance.now();
    const entry = performance.getEntriesByType('resource').find((e) => e.name.endsWith('/api/extra/generate/stream'));
    return { firstEventAt, endedAt, events: text.split('event: message').length - 1, protocol: entry ? entry.nextHopProtocol : '', encoding: response.headers.get('content-encoding') || '' };
  };
  return Promise.all(Array.from({ length: 10 }, (_, i) => one(i)));
}`;

interface StreamTimes {
  firstEventAt: number;
  endedAt: number;
  events: number;
  protocol: string;
  encoding: string;
}

/**
 * Over HTTP/1.1 a browser opens at most six connections to one origin, so a seventh stream waits for one to end.
 * Over HTTPS with HTTP/2 they are streams of one connection: ten from one page all progress together.
 */
describe('Chromium over HTTPS/HTTP/2: ten concurrent streams from one page', () => {
  let server: RunningServer;
  let browser: Browser;
  before(async () => {
    server = await startTestServer({
      modelPath: slowTestModelPath(),
      parallel: 10,
      contextSize: 2560,
      tls: { certPath: join(TLS, 'localhost-cert.pem'), keyPath: join(TLS, 'localhost-key.pem') },
    });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  it('all ten have their first event before any of them ends, over h2', async () => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    await page.goto(`${server.url}/api`);
    const bans = banEndTokens(server);
    const times = await withDeadline(
      // As text: the test runner's transform would otherwise add helpers the page does not have.
      page.evaluate(`(${TEN_STREAMS})(${JSON.stringify(bans)})`),
      180_000,
      'ten streams in the page',
    );
    const all = times as StreamTimes[];
    assert.equal(all.length, 10);
    assert.ok(
      all.every((t) => t.protocol === 'h2'),
      all.map((t) => t.protocol).join(' '),
    );
    const firstEnd = Math.min(...all.map((t) => t.endedAt));
    const lastFirstEvent = Math.max(...all.map((t) => t.firstEventAt));
    assert.ok(all.every((t) => t.firstEventAt > 0 && t.events > 1));
    // Chromium asks for compression: the streams it read event by event were compressed ones.
    assert.ok(
      all.every((t) => ['gzip', 'br', 'deflate'].includes(t.encoding)),
      all.map((t) => t.encoding).join(' '),
    );
    assert.ok(
      lastFirstEvent < firstEnd,
      `the last stream's first event came ${Math.round(lastFirstEvent - firstEnd)} ms after the first stream ended`,
    );
    await context.close();
  });
});
