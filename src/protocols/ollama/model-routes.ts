import { servedModelId } from '../../core/model-info.ts';
import { infoRoute, type ProtocolRoute } from '../../core/protocol.ts';
import type { FleetModel, ProtocolServices } from '../../core/protocol-services.ts';
import { factDigest } from '../common/derived-id.ts';
import { type OllamaEmbedBody, OllamaEmbedBody as OllamaEmbedSchema, OllamaShowBody } from './wire.ts';

/**
 * The Ollama version we report. Clients gate features on it; 0.7.0 is what KoboldCpp reports, and every
 * endpoint such clients call at that level is implemented here.
 */
const OLLAMA_COMPAT_VERSION = '0.7.0';

/** A model another node of the fleet serves: only its name and context are known here. */
function remoteEntry(model: FleetModel) {
  const name = `${model.id}:latest`;
  return {
    name,
    model: name,
    modified_at: new Date(0).toISOString(),
    size: 0,
    digest: factDigest(`fleet:${model.id}:${model.contextSize}`),
    details: {
      parent_model: '',
      format: 'gguf',
      family: '',
      families: [],
      parameter_size: '',
      quantization_level: 'unknown',
    },
  };
}

/** Ollama's model listing (tags, ps, show, version) and its two embedding routes. */
export function ollamaModelRoutes(services: ProtocolServices): ProtocolRoute[] {
  const { model } = services;
  const name = `${servedModelId(model)}:latest`;
  const modified = () => services.modelModifiedAt();
  const details = () => ({
    parent_model: '',
    format: 'gguf',
    family: model.architecture,
    families: [model.architecture],
    parameter_size: parameterSize(model.parameterCount),
    quantization_level: 'unknown',
  });
  // Not a content digest (hashing a multi-gigabyte file at every listing is too slow): stable per file version.
  const entry = () => ({
    name,
    model: name,
    modified_at: modified().toISOString(),
    size: model.sizeBytes,
    digest: factDigest(`${model.path}:${model.sizeBytes}:${modified().getTime()}`),
    details: details(),
  });
  const embed = async (texts: readonly string[]) => {
    const vectors: number[][] = [];
    for (const text of texts) vectors.push(await services.embed(text));
    return vectors;
  };
  return [
    infoRoute({
      method: 'GET',
      paths: ['/api/tags'],
      summary: "The loaded model (in a fleet, every live node's), as Ollama lists models",
      handle: async () => {
        const others = ((await services.fleetModels?.()) ?? []).filter((other) => `${other.id}:latest` !== name);
        return { models: [entry(), ...others.map(remoteEntry)] };
      },
    }),
    infoRoute({
      method: 'GET',
      paths: ['/api/ps'],
      summary: 'Models in memory (the loaded one, kept loaded)',
      handle: () => ({
        models: [{ ...entry(), expires_at: '9999-12-31T23:59:59Z', size_vram: 0, context_length: model.contextSize }],
      }),
    }),
    infoRoute({
      method: 'GET',
      paths: ['/api/version'],
      summary: 'Ollama API level we implement',
      open: true,
      handle: () => ({ version: OLLAMA_COMPAT_VERSION }),
    }),
    infoRoute<{ model?: string; name?: string }>({
      method: 'POST',
      paths: ['/api/show'],
      summary: 'Details of the loaded model (whatever name is asked for: one model is served)',
      body: OllamaShowBody,
      handle: () => ({
        license: '',
        modelfile: `FROM ${model.path}\n`,
        parameters: '',
        template: model.chatTemplate ?? '',
        details: details(),
        model_info: {
          'general.architecture': model.architecture,
          ...(model.parameterCount !== undefined ? { 'general.parameter_count': model.parameterCount } : {}),
          [`${model.architecture}.context_length`]: model.trainContextSize,
        },
        capabilities: model.canEmbed ? ['completion', 'embedding'] : ['completion'],
        modified_at: modified().toISOString(),
      }),
    }),
    infoRoute<OllamaEmbedBody>({
      method: 'POST',
      paths: ['/api/embed'],
      summary: 'Embedding vectors (only when the loaded model can embed)',
      body: OllamaEmbedSchema,
      handle: async ({ body }) => {
        const input = body.input ?? '';
        const texts = typeof input === 'string' ? [input] : input;
        const started = performance.now();
        const embeddings = await embed(texts);
        const count = texts.reduce(
          (sum, text) => sum + services.tokenize(text, { special: false, addBos: true }).length,
          0,
        );
        return {
          model: name,
          embeddings,
          total_duration: Math.round((performance.now() - started) * 1e6),
          load_duration: 0,
          prompt_eval_count: count,
        };
      },
    }),
    infoRoute<OllamaEmbedBody>({
      method: 'POST',
      paths: ['/api/embeddings'],
      summary: 'One embedding vector (older endpoint; only when the loaded model can embed)',
      body: OllamaEmbedSchema,
      handle: async ({ body }) => ({ embedding: (await embed([body.prompt ?? '']))[0] }),
    }),
  ];
}

function parameterSize(count: number | undefined): string {
  if (count === undefined) return 'unknown';
  if (count >= 1e9) return `${(count / 1e9).toFixed(1)}B`;
  if (count >= 1e6) return `${(count / 1e6).toFixed(1)}M`;
  return `${(count / 1e3).toFixed(1)}K`;
}
