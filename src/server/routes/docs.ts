import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../server-context.ts';

interface OpenApiOperation {
  summary?: string;
  tags?: string[];
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** `/api` (a readable page, no CDN), `/api/openapi.json`, `/.well-known/serviceinfo`, `/props`. */
export function registerDocsRoutes(app: FastifyInstance, context: ServerContext): void {
  const { engine, scheduler } = context;
  const open = { config: { auth: false } } as const;

  app.get('/api/openapi.json', { ...open, schema: { hide: true } }, async () => app.swagger());

  app.get('/api', { ...open, schema: { hide: true } }, async (_request, reply) => {
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
    const model = engine.model;
    reply
      .type('text/html; charset=utf-8')
      .send(`<!doctype html><html><head><meta charset="utf-8"><title>Kindling API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em}td{padding:2px 10px;vertical-align:top}code{background:#f3f3f3;padding:1px 4px}</style></head>
<body><h1>Kindling API</h1><p>Version ${escapeHtml(context.version)} · model <code>${escapeHtml(model.name)}</code>${model.placeholder ? ' (untrained placeholder)' : ''} · context ${model.contextSize} · ${scheduler.slotCount} slots.
The machine-readable description is <a href="/api/openapi.json">/api/openapi.json</a> (OpenAPI 3).</p>${sections}</body></html>`);
  });

  app.get('/.well-known/serviceinfo', { ...open, schema: { hide: true } }, async () => ({
    version: '0.2',
    software: { name: 'Kindling', version: context.version, repository: '', homepage: '', logo: '' },
    api: {
      koboldai: { name: 'KoboldAI API', rel_url: '/api', documentation: '/api', version: '1.2.5' },
      openai: { name: 'OpenAI API', rel_url: '/v1', documentation: '/api', version: '1' },
    },
  }));

  app.get('/props', { ...open, schema: { hide: true } }, async () => ({
    chat_template: engine.model.chatTemplate ?? null,
    id: 0,
    id_task: -1,
    total_slots: scheduler.slotCount,
    modalities: { vision: false, audio: false },
    model_path: engine.model.name,
    build_info: engine.model.engineBuild,
    n_ctx: engine.model.contextSize,
    default_generation_settings: { n_ctx: engine.model.contextSize },
  }));
}
