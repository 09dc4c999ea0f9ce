import type { ClientConfig } from './client-config.ts';
import { ProtocolError } from './client-errors.ts';
import type { StreamCallOptions } from './client-types.ts';
import { requestJsonWithFailover } from './endpoints.ts';
import { LinkedAbortController } from './linked-abort-controller.ts';
import { isRecord } from './provider-error-body.ts';

/** `GET {baseUrl}/models` in the `{"data": [{"id"}]}` shape OpenAI-compatible servers and Anthropic share. */
export async function fetchModelIds(
  config: ClientConfig,
  headers: Record<string, string>,
  options?: StreamCallOptions,
): Promise<string[]> {
  const controller = new LinkedAbortController(options?.signal);
  try {
    const body = await requestJsonWithFailover(
      config.fetch,
      config.endpoints,
      () => ({ method: 'GET', url: `${config.baseUrl}/models`, headers }),
      controller.signal,
    );
    const data = isRecord(body) ? body['data'] : undefined;
    if (!Array.isArray(data)) throw new ProtocolError('/models: expected {"data": [...]}');
    return data.flatMap((entry) => (isRecord(entry) && typeof entry['id'] === 'string' ? [entry['id']] : []));
  } finally {
    controller.dispose();
  }
}
