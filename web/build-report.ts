import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Plugin } from 'vite';

/**
 * Prints the gzipped size of the built app and fails the build above the budget. It also writes
 * `dist/csp.json`: sha256 hashes of the inline script and style, so the server can send a strict
 * Content-Security-Policy (no 'unsafe-inline') for the single-file page.
 */
export function buildReport(options: { budgetBytes: number }): Plugin {
  let outDir = 'dist';
  return {
    name: 'kindling-build-report',
    apply: 'build',
    configResolved(config) {
      outDir = join(config.root, config.build.outDir);
    },
    closeBundle() {
      const file = join(outDir, 'index.html');
      const html = readFileSync(file);
      const gz = gzipSync(html, { level: 9 }).length;
      const hashes = (tag: string) =>
        [...html.toString('utf8').matchAll(new RegExp(`<${tag}[^>]*>([\\s\\S]*?)</${tag}>`, 'g'))].map(
          (m) => `'sha256-${createHash('sha256').update(m[1] ?? '').digest('base64')}'`,
        );
      const csp = { script: hashes('script'), style: hashes('style') };
      writeFileSync(join(outDir, 'csp.json'), `${JSON.stringify(csp, null, 2)}\n`);
      const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;
      console.log(
        `\nweb/dist/index.html: ${kb(html.length)} raw, ${kb(gz)} gzipped (budget ${kb(options.budgetBytes)}; KoboldAI Lite is 1.7 MB raw)`,
      );
      if (gz > options.budgetBytes) throw new Error(`web bundle is ${kb(gz)} gzipped, over the ${kb(options.budgetBytes)} budget`);
    },
  };
}
