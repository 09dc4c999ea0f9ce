import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../server-context.ts';

export const WEB_DIST = join(dirname(fileURLToPath(import.meta.url)), '../../../web/dist');

/**
 * The page's Content-Security-Policy. The build writes the sha256 of its inline script and style to
 * csp.json, so no 'unsafe-inline' is needed; remote providers need `connect-src *`, Tavern avatars `data:`.
 */
function contentSecurityPolicy(): string {
  let script = "'unsafe-inline'";
  let style = "'unsafe-inline'";
  const file = join(WEB_DIST, 'csp.json');
  if (existsSync(file)) {
    const hashes = JSON.parse(readFileSync(file, 'utf8')) as { script?: string[]; style?: string[] };
    if (hashes.script?.length) script = hashes.script.join(' ');
    if (hashes.style?.length) style = hashes.style.join(' ');
  }
  return `default-src 'self'; script-src ${script}; style-src ${style}; img-src 'self' data: blob:; connect-src *; object-src 'none'; base-uri 'none'; frame-ancestors 'self'`;
}

/** The web client is one self-contained HTML file built by Vite into web/dist. */
export function registerWebRoutes(app: FastifyInstance, _context: ServerContext): void {
  const index = join(WEB_DIST, 'index.html');
  app.get('/', { config: { auth: false }, schema: { hide: true } }, async (_request, reply) => {
    if (!existsSync(index)) {
      return reply
        .type('text/html; charset=utf-8')
        .send(
          '<!doctype html><meta charset="utf-8"><title>Kindling</title><p>The Kindling server is running. The web client is not built: run <code>npm run build:web</code>. API: <a href="/api">/api</a>.</p>',
        );
    }
    return reply
      .type('text/html; charset=utf-8')
      .header('content-security-policy', contentSecurityPolicy())
      .header('x-content-type-options', 'nosniff')
      .send(readFileSync(index));
  });
}
