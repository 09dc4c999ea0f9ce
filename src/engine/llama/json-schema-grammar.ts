import { getLlama, type Llama, LlamaLogLevel } from 'node-llama-cpp';
import { KindlingError } from '../../core/kindling-error.ts';

let loading: Promise<Llama> | undefined;

/**
 * llama.cpp's JSON-schema-to-GBNF converter without a model, for an engine that does not load one (`--upstream`):
 * the native library is loaded on the first schema (CPU only, never built or downloaded), not at start-up.
 */
export async function jsonSchemaToGrammarWithoutModel(schema: unknown): Promise<string> {
  loading ??= getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, progressLogs: false });
  try {
    const llama = await loading;
    // biome-ignore lint/suspicious/noExplicitAny: node-llama-cpp types the schema statically; ours arrives at run time.
    return (await llama.createGrammarForJsonSchema(schema as any)).grammar;
  } catch (error) {
    throw KindlingError.badInput(
      'schema',
      `cannot turn this JSON schema into a grammar (${error instanceof Error ? error.message : error})`,
    );
  }
}
