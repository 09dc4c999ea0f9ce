import { KindlingError } from '../../core/kindling-error.ts';
import { servedModelId } from '../../core/model-info.ts';
import { infoRoute, type ProtocolRoute } from '../../core/protocol.ts';
import type { ProtocolServices } from '../../core/protocol-services.ts';
import { type OpenaiEmbeddingsBody, OpenaiEmbeddingsBody as OpenaiEmbeddingsSchema } from './wire.ts';

/** OpenAI's model listing and embeddings. */
export function openaiModelRoutes(services: ProtocolServices): ProtocolRoute[] {
  const { model } = services;
  const modelId = servedModelId(model);
  const startedAt = Math.floor(Date.now() / 1000);
  const modelEntry = () => ({ id: modelId, object: 'model', created: startedAt, owned_by: 'kindling' });
  return [
    infoRoute({
      method: 'GET',
      paths: ['/v1/models'],
      summary: "The loaded model (in a fleet, every live node's)",
      handle: async () => {
        const others = ((await services.fleetModels?.()) ?? []).filter((entry) => entry.id !== modelId);
        const entries = others.map((entry) => ({ ...modelEntry(), id: entry.id }));
        return { object: 'list', data: [modelEntry(), ...entries] };
      },
    }),
    // The id has a slash (`koboldcpp/<name>`), so the route takes the rest of the path; the bare name still works.
    infoRoute({
      method: 'GET',
      paths: ['/v1/models/*'],
      summary: 'One model by id',
      handle: ({ params }) => {
        const id = params['*'] ?? '';
        if (id !== modelId && id !== model.name)
          throw new KindlingError('not_found', `The model '${id}' does not exist; this server serves '${modelId}'.`, {
            field: 'model',
          });
        return modelEntry();
      },
    }),
    infoRoute<OpenaiEmbeddingsBody>({
      method: 'POST',
      paths: ['/v1/embeddings'],
      summary: 'Embedding vectors (only when the loaded model can embed)',
      body: OpenaiEmbeddingsSchema,
      handle: async ({ body }) => {
        const inputs = typeof body.input === 'string' ? [body.input] : body.input;
        let promptTokens = 0;
        const data = [];
        for (const [index, input] of inputs.entries()) {
          // Embedding first: it refuses a text longer than the context before anything tokenizes all of it.
          const vector = await services.embed(input);
          promptTokens += services.tokenize(input, { special: false, addBos: true }).length;
          const embedding =
            body.encoding_format === 'base64'
              ? Buffer.from(new Float32Array(vector).buffer).toString('base64')
              : vector;
          data.push({ object: 'embedding', index, embedding });
        }
        return {
          object: 'list',
          data,
          model: modelId,
          usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
        };
      },
    }),
  ];
}
