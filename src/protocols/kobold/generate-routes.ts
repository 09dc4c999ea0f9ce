import { generationRoute, type ProtocolRoute } from '../../core/protocol.ts';
import type { ProtocolServices } from '../../core/protocol-services.ts';
import { withSchemaGrammar } from '../common/grammar-field.ts';
import { decodeKoboldGenerate } from './decode.ts';
import { encodeKoboldResult } from './encode-response.ts';
import { encodeKoboldStream } from './encode-stream.ts';
import { type KoboldGenerateBody, KoboldGenerateBody as KoboldGenerateSchema } from './wire.ts';

/** The protocol Kobold's HTTP and WebSocket routes record on their generations (one encoder family). */
export const KOBOLD_PROTOCOL = 'kobold';

/** A Kobold generate body as the scheduler takes it: a JSON-schema `grammar` converted, defaults applied. */
export async function decodeKoboldBody(services: ProtocolServices, body: KoboldGenerateBody | undefined) {
  const converted = await withSchemaGrammar(body, (schema) => services.jsonSchemaToGrammar(schema));
  return decodeKoboldGenerate(converted, { maxLength: services.defaultMaxLength });
}

/** KoboldCpp's generate (waits for the whole text) and its SSE stream (resumable by genkey + Last-Event-ID). */
export function koboldGenerateRoutes(services: ProtocolServices): ProtocolRoute[] {
  return [
    generationRoute<KoboldGenerateBody>({
      paths: ['/api/v1/generate', '/api/latest/generate'],
      summary: 'Generate text (waits for the whole result)',
      body: KoboldGenerateSchema,
      plan: async ({ body }) => ({
        request: await decodeKoboldBody(services, body),
        protocol: KOBOLD_PROTOCOL,
        respond: (result, generation) =>
          encodeKoboldResult(result.text, result.finish, generation.request.logprobs ? result.logprobs : undefined),
      }),
    }),
    generationRoute<KoboldGenerateBody>({
      paths: ['/api/extra/generate/stream'],
      summary: 'Generate text as Server-Sent Events (resumable with genkey + Last-Event-ID)',
      body: KoboldGenerateSchema,
      plan: async ({ body }) => ({
        request: await decodeKoboldBody(services, body),
        protocol: KOBOLD_PROTOCOL,
        stream: { resumable: true, intervalMs: body?.stream_interval_ms, encoder: () => encodeKoboldStream },
      }),
    }),
  ];
}
