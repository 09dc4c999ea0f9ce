import type { FastifyInstance, FastifyRequest } from 'fastify';
import { PROTECTED_MODEL_NAME } from '../../core/model-info.ts';
import { isAnonymous } from '../auth.ts';
import { accessOf, type ServerContext } from '../server-context.ts';

interface OpenApiOperation {
  summary?: string;
  tags?: string[];
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** `/api` (a readable page of every route, no CDN) and `/api/openapi.json`. */
export function registerDocsRoutes(app: FastifyInstance, context: ServerContext): void {
  const { engine, scheduler } = context;
  const access = accessOf(context);
  const open = { config: { auth: false } } as const;
  /** The model as an open route may name it: hidden from an anonymous caller of a protected server. */
  const modelFor = (request: FastifyRequest) => (isAnonymous(request, access) ? undefined : engine.model);

  app.get('/api/openapi.json', { ...open, schema: { hide: true } }, async () => app.swagger());

  app.get('/api', { ...open, schema: { hide: true } }, async (request, reply) => {
    const doc = app.swagger() as { paths?: Record<string, Record<string, OpenApiOperation>> };
    const groups = new Map<string, string[]>();
    for (const [path, methods] of Object.entries(doc.paths ?? {})) {
      for (const [method, operation] of Object.entries(methods)) {
        const tag = operation.tags?.[0] ?? 'Other';
        const rows = groups.get(tag) ?? [];
        rows.push(
          `<tr><td><code>${method.toUpperCase()}</code></td><td><code>${escapeHtml(path)}</code></td><td>${escapeHtml(operation.summary ?? '')}</td></tr>`,
        );
        groups.set(tag, rows);
      }
    }
    const sections = [...groups]
      .map(([tag, rows]) => `<h2>${escapeHtml(tag)}</h2><table>${rows.join('')}</table>`)
      .join('');
    const model = modelFor(request);
    const about = model
      ? `model <code>${escapeHtml(model.name)}</code>${model.placeholder ? ' (untrained placeholder)' : ''} · `
      : `model <code>${PROTECTED_MODEL_NAME}</code> (give the key to see it) · `;
    reply
      .type('text/html; charset=utf-8')
      .send(`<!doctype html><html><head><meta charset="utf-8"><title>Kindling API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em}td{padding:2px 10px;vertical-align:top}code{background:#f3f3f3;padding:1px 4px}</style></head>
<body><h1>Kindling API</h1><p>Version ${escapeHtml(context.version)} · ${about}context ${engine.model.contextSize} · ${scheduler.slotCount} slots.
The machine-readable description is <a href="/api/openapi.json">/api/openapi.json</a> (OpenAPI 3).</p>${sections}</body></html>`);
  });
}
