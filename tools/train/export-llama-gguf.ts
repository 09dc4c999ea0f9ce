import type { GgmlTypeName, GgufMetadataValue } from '../../src/gguf/gguf-value-types.ts';
import { writeGgufFile } from '../../src/gguf/gguf-writer.ts';
import { llamaGgufDocument } from '../../src/gguf/llama-gguf.ts';
import type { Vocabulary } from '../../src/gguf/vocabulary.ts';
import type { LlamaParameters } from './llama-parameters.ts';

export interface ExportOptions {
  /** F32 keeps llama.cpp's logits equal to the trainer's; F16 halves the file. */
  type?: GgmlTypeName;
  extraMetadata?: ReadonlyArray<readonly [string, GgufMetadataValue]>;
}

/**
 * Writes trained weights as a llama GGUF through our writer. The trainer already keeps every tensor in
 * ggml layout and RoPE pairing, so export is a straight copy with no transposes or q/k permutation.
 */
export function exportLlamaGguf(
  path: string,
  params: LlamaParameters,
  vocab: Vocabulary,
  options: ExportOptions = {},
): void {
  const doc = llamaGgufDocument({
    hparams: params.hparams,
    vocab,
    type: options.type ?? 'F32',
    weights: (name) => {
      const entry = params.offsets.get(name);
      if (!entry) throw new Error(`no tensor ${name}`);
      return params.data.subarray(entry.offset, entry.offset + entry.size);
    },
    ...(options.extraMetadata !== undefined ? { extraMetadata: options.extraMetadata } : {}),
  });
  writeGgufFile(path, doc);
}
