import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../server-context.ts';

export const WEB_DIST = join(dirname(fileURLToPath(import.meta.url)), '../../../web/dist');

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
      .header(
        'content-security-policy',
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src *",
      )
      .send(readFileSync(index));
  });
}
