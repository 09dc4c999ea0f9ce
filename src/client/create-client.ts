import { AnthropicClient } from './anthropic-client.ts';
import { resolveClientConfig } from './client-config.ts';
import type { ApiKind, ClientOptions, TextClient } from './client-types.ts';
import { KoboldClient } from './kobold-client.ts';
import { OllamaClient } from './ollama-client.ts';
import { OpenAIClient } from './openai-client.ts';

/** The one entry point: a client for `api` at `options.baseUrl`, all sharing the `TextClient` surface. */
export function createClient(api: ApiKind, options: ClientOptions): TextClient {
  const config = resolveClientConfig(api, options);
  switch (api) {
    case 'kobold':
      return new KoboldClient(config);
    case 'openai':
      return new OpenAIClient(config);
    case 'anthropic':
      return new AnthropicClient(config);
    case 'ollama':
      return new OllamaClient(config);
    default:
      throw new TypeError(`unknown api kind: ${String(api)}`);
  }
}

export const API_KINDS: readonly ApiKind[] = ['kobold', 'openai', 'anthropic', 'ollama'];
