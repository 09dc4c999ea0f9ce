import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { ensureWebBuild, webIndex } from './support/web-build.ts';

it('the built web client is one HTML file under 200 KB gzipped, with CSP hashes for its inline code', async (t) => {
  const html = await ensureWebBuild();
  const gz = gzipSync(html, { level: 9 }).length;
  t.diagnostic(`web/dist/index.html: ${(html.length / 1024).toFixed(1)} KB raw, ${(gz / 1024).toFixed(1)} KB gzipped`);
  assert.ok(gz < 200 * 1024, `${gz} bytes gzipped`);
  assert.doesNotMatch(
    html,
    /<script[^>]+src=|<link[^>]+stylesheet/,
    'no external assets: works from file:// and any static host',
  );
  assert.doesNotMatch(html, /\beval\(|new Function\(/, 'no eval');
  const csp = JSON.parse(readFileSync(join(webIndex, '..', 'csp.json'), 'utf8')) as {
    script: string[];
    style: string[];
  };
  assert.equal(csp.script.length, 1);
  assert.match(csp.script[0]!, /^'sha256-[A-Za-z0-9+/]+=*'$/);
});
