import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isAnonymous } from '../auth.ts';
import type { ServerContext } from '../server-context.ts';
import { PROTECTED_MODEL_NAME } from './kobold-info.ts';

interface OpenApiOperation {
  summary?: string;
  tags?: string[];
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** `/api` (a readable page, no CDN), `/api/openapi.json`, `/.well-known/serviceinfo`, `/props`. */
export function registerDocsRoutes(app: FastifyInstance, context: ServerContext): void {
  const { engine, scheduler, config } = context;
  const open = { config: { auth: false } } as const;
  /** The model as an open route may name it: hidden from an anonymous caller of a protected server. */
  const modelFor = (request: FastifyRequest) => (isAnonymous(request, config.password) ? undefined : engine.model);

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

  app.get('/.well-known/serviceinfo', { ...open, schema: { hide: true } }, async () => ({
    version: '0.2',
    software: { name: 'Kindling', version: context.version, repository: '', homepage: '', logo: '' },
    api: {
      koboldai: { name: 'KoboldAI API', rel_url: '/api', documentation: '/api', version: '1.2.5' },
      openai: { name: 'OpenAI API', rel_url: '/v1', documentation: '/api', version: '1' },
    },
  }));

  // An anonymous caller of a protected server sees neither the model's name nor its chat template (which names
  // its family); the context and slot counts are the server's shape, not anyone's activity.
  app.get('/props', { ...open, schema: { hide: true } }, async (request) => ({
    chat_template: modelFor(request)?.chatTemplate ?? null,
    id: 0,
    id_task: -1,
    total_slots: scheduler.slotCount,
    modalities: { vision: false, audio: false },
    model_path: modelFor(request)?.name ?? PROTECTED_MODEL_NAME,
    build_info: engine.model.engineBuild,
    n_ctx: engine.model.contextSize,
    default_generation_settings: { n_ctx: engine.model.contextSize },
  }));
}
