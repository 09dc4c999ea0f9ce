import { KindlingError } from '../../core/kindling-error.ts';
import { UpstreamFailure, type UpstreamHttp } from './upstream-http.ts';

/**
 * Which server answers, as far as its completion body and tokenizer routes differ:
 * - `kindling`: Kindling or KoboldCpp (Kobold sampler names on `/v1/completions`, `/api/extra/tokenize`);
 * - `llama.cpp`: llama.cpp's `llama-server` (`/tokenize`, `/detokenize`, `/props`, its own sampler names);
 * - `vllm`: vLLM (`/tokenize`, `/detokenize`, `repetition_penalty`, `guided_grammar`);
 * - `openai`: anything else that speaks `/v1/completions` (SGLang, TGI, Ollama's `/v1`): OpenAI's fields only
 *   are sure to be honoured, and tokenizer routes are used only where `/tokenize` answers.
 */
export type UpstreamFlavor = 'kindling' | 'llama.cpp' | 'vllm' | 'openai';

/** How the upstream tokenizes: Kobold's routes, llama.cpp's/vLLM's `/tokenize` and `/detokenize`, or not at all. */
export type TokenizerRoutes = 'kobold' | 'tokenize' | 'none';

export interface UpstreamFacts {
  flavor: UpstreamFlavor;
  /** The id its `/v1/models` lists first (sent as `model` in every completion). */
  modelId: string;
  contextSize: number | undefined;
  trainContextSize: number | undefined;
  vocabularySize: number | undefined;
  /** Sequences it decodes together (llama-server's `total_slots`), where it says. */
  slots: number | undefined;
  tokenizer: TokenizerRoutes;
  chatTemplate: string | undefined;
}

type Json = Record<string, unknown>;
const record = (value: unknown): Json => (value && typeof value === 'object' ? (value as Json) : {});
const positive = (value: unknown): number | undefined =>
  typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : undefined;

/**
 * Learns the upstream's model, context and routes with a few GETs (and one empty `/tokenize`) to the URL given,
 * nothing else. An upstream that does not answer `/v1/models` is a start-up error naming it.
 */
export async function probeUpstream(http: UpstreamHttp): Promise<UpstreamFacts> {
  let models: Json;
  try {
    models = record(await http.json('/models', undefined, { openai: true }));
  } catch (error) {
    const detail = error instanceof UpstreamFailure && error.status ? `HTTP ${error.status}: ${error.message}` : error;
    throw new KindlingError(
      'unavailable',
      `--upstream ${http.base}: GET ${http.base}/models failed (${detail instanceof Error ? detail.message : detail}); give the OpenAI-compatible base URL of a running server, e.g. http://127.0.0.1:8080/v1`,
    );
  }
  const first = record(Array.isArray(models.data) ? models.data[0] : undefined);
  const modelId = typeof first.id === 'string' ? first.id : 'upstream';
  const owner = typeof first.owned_by === 'string' ? first.owned_by.toLowerCase() : '';
  const meta = record(first.meta);
  const optional = async (path: string, body?: unknown) => http.json(path, body).then(record, () => undefined);
  const version = await optional('/api/extra/version');
  const props = owner === 'kindling' || version?.result ? undefined : await optional('/props');
  const flavor: UpstreamFlavor =
    owner === 'kindling' || version?.result === 'KoboldCpp'
      ? 'kindling'
      : props?.default_generation_settings || owner === 'llamacpp'
        ? 'llama.cpp'
        : owner === 'vllm'
          ? 'vllm'
          : 'openai';
  let tokenizer: TokenizerRoutes = 'none';
  let contextSize: number | undefined;
  if (flavor === 'kindling') {
    tokenizer = (await optional('/api/extra/tokenize', { prompt: '' })) ? 'kobold' : 'none';
    contextSize = positive((await optional('/api/extra/true_max_context_length'))?.value);
  } else {
    // Both llama-server (`content`, `add_special`) and vLLM (`prompt`, `add_special_tokens`) answer `tokens`.
    const probe = await optional('/tokenize', {
      content: '',
      prompt: '',
      add_special: false,
      add_special_tokens: false,
    });
    if (Array.isArray(probe?.tokens)) tokenizer = 'tokenize';
    contextSize =
      positive(record(props?.default_generation_settings).n_ctx) ??
      positive(first.max_model_len) ??
      positive(probe?.max_model_len);
  }
  const slots = positive(props?.total_slots);
  const template = props?.chat_template;
  return {
    flavor,
    modelId,
    contextSize,
    trainContextSize: positive(meta.n_ctx_train),
    vocabularySize: positive(meta.n_vocab),
    slots,
    tokenizer,
    chatTemplate: typeof template === 'string' && template.trim() !== '' ? template : undefined,
  };
}
