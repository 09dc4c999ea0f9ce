import type { ProtocolDescriptor } from '../../core/protocol.ts';
import { openaiErrorBody } from './errors.ts';
import { openaiGenerateRoutes } from './generate-routes.ts';
import { openaiModelRoutes } from './model-routes.ts';

/** OpenAI's chat and legacy completions, models and embeddings. */
export const openaiProtocol: ProtocolDescriptor = {
  name: 'openai',
  tag: 'OpenAI',
  pathPrefixes: ['/v1'],
  errorBody: (error) => openaiErrorBody(error),
  routes: (services) => [...openaiGenerateRoutes(services), ...openaiModelRoutes(services)],
};
