import type { ProtocolDescriptor } from '../../core/protocol.ts';
import { ollamaErrorBody } from './errors.ts';
import { ollamaGenerateRoutes } from './generate-routes.ts';
import { ollamaModelRoutes } from './model-routes.ts';

/** Ollama's generate and chat (NDJSON), its model listing and embeddings. */
export const ollamaProtocol: ProtocolDescriptor = {
  name: 'ollama',
  tag: 'Ollama',
  // Its paths sit among Kobold's under /api: only its own routes (any method) answer in its envelope.
  pathPrefixes: [],
  errorBody: (error) => ollamaErrorBody(error),
  routes: (services) => [...ollamaGenerateRoutes(services), ...ollamaModelRoutes(services)],
};
