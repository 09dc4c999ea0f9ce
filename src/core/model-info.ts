/**
 * The loaded model's id on every API (OpenAI `/v1/models` and `model` fields, Anthropic, Ollama with its
 * `:latest` tag, Kobold `/api/v1/model`): KoboldCpp's `koboldcpp/<name>`, so a client sees one model, not two.
 */
export function servedModelId(model: Pick<ModelInfo, 'name'>): string {
  return `koboldcpp/${model.name}`;
}

/** Whether a client's model name means this model: its id (`koboldcpp/<name>`) or name, with Ollama's tag or not. */
export function namesModel(requested: string, model: Pick<ModelInfo, 'name'>): boolean {
  const bare = requested.endsWith(':latest') ? requested.slice(0, -':latest'.length) : requested;
  return bare === servedModelId(model) || bare === model.name;
}

/** What every open route says instead of the model name to an anonymous caller of a protected server. */
export const PROTECTED_MODEL_NAME = 'protected-model';

/** A setting the engine lowered from what the configuration asked, and why. */
export interface Adjustment {
  setting: 'contextSize' | 'threads';
  requested: number;
  used: number;
  reason: string;
}

/** What the server tells clients about the loaded model. */
export interface ModelInfo {
  /** Display name (file name without extension unless the GGUF names itself). */
  name: string;
  path: string;
  /** Context window per generation slot. */
  contextSize: number;
  trainContextSize: number;
  vocabularySize: number;
  sizeBytes: number;
  parameterCount?: number;
  architecture: string;
  /** Jinja chat template from the GGUF, when the model has one. */
  chatTemplate?: string | undefined;
  canEmbed: boolean;
  /** Which inference binary runs it, e.g. "llama.cpp v0.4.0, prebuilt binary, CPU". */
  engineBuild: string;
  /** True for our random-weight placeholder: its text is noise and every surface says so. */
  placeholder: boolean;
  /** Where the engine runs with less than was asked (a context past the trained one, threads past the cores). */
  adjustments?: readonly Adjustment[] | undefined;
}
