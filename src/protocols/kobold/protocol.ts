import type { ProtocolDescriptor } from '../../core/protocol.ts';
import { koboldErrorBody } from './errors.ts';
import { koboldGenerateRoutes } from './generate-routes.ts';
import { koboldInfoRoutes } from './info-routes.ts';
import { koboldLookupRoutes } from './lookup-routes.ts';
import { koboldTokenRoutes } from './token-routes.ts';

/** The KoboldAI / KoboldCpp API: generate, stream, check, abort, tokens, and the informational routes. */
export const koboldProtocol: ProtocolDescriptor = {
  name: 'kobold',
  tag: 'KoboldAI',
  // Every path no other protocol claims answers in Kobold's envelope, as a KoboldCpp server's would.
  pathPrefixes: ['/'],
  errorBody(error, path) {
    const body = koboldErrorBody(error);
    // KoboldCpp's tokencount answers errors with {"value": -1}; keep that next to the envelope.
    if (path === '/api/extra/tokencount' || path === '/api/extra/tokenize') body.value = -1;
    return body;
  },
  routes: (services) => [
    ...koboldGenerateRoutes(services),
    ...koboldLookupRoutes(services),
    ...koboldTokenRoutes(services),
    ...koboldInfoRoutes(services),
  ],
};
