import type { GgmlTypeName, GgufMetadataValue } from './gguf-value-types.ts';
import type { GgufDocument, GgufTensor } from './gguf-writer.ts';
import type { Vocabulary } from './vocabulary.ts';

/** Hyper-parameters of a llama-architecture decoder (RMSNorm, RoPE, multi-head attention, SwiGLU). */
export interface LlamaHyperParams {
  name: string;
  contextLength: number;
  embeddingLength: number;
  blockCount: number;
  feedForwardLength: number;
  headCount: number;
  headCountKv: number;
  rmsEpsilon: number;
  ropeFreqBase: number;
}

/** llama.cpp's `general.file_type` (`enum llama_ftype`) for each uniform tensor type. */
const FILE_TYPE: Record<GgmlTypeName, number> = { F32: 0, F16: 1, Q8_0: 7 };

/** Tensor names and ggml shapes of a llama model, in the order llama.cpp's converter writes them. */
export function llamaTensorShapes(h: LlamaHyperParams, vocabSize: number): Array<{ name: string; shape: number[] }> {
  const headDim = h.embeddingLength / h.headCount;
  const kvDim = headDim * h.headCountKv;
  const shapes = [{ name: 'token_embd.weight', shape: [h.embeddingLength, vocabSize] }];
  for (let i = 0; i < h.blockCount; i++) {
    shapes.push(
      { name: `blk.${i}.attn_norm.weight`, shape: [h.embeddingLength] },
      { name: `blk.${i}.attn_q.weight`, shape: [h.embeddingLength, h.embeddingLength] },
      { name: `blk.${i}.attn_k.weight`, shape: [h.embeddingLength, kvDim] },
      { name: `blk.${i}.attn_v.weight`, shape: [h.embeddingLength, kvDim] },
      { name: `blk.${i}.attn_output.weight`, shape: [h.embeddingLength, h.embeddingLength] },
      { name: `blk.${i}.ffn_norm.weight`, shape: [h.embeddingLength] },
      { name: `blk.${i}.ffn_gate.weight`, shape: [h.embeddingLength, h.feedForwardLength] },
      { name: `blk.${i}.ffn_up.weight`, shape: [h.embeddingLength, h.feedForwardLength] },
      { name: `blk.${i}.ffn_down.weight`, shape: [h.feedForwardLength, h.embeddingLength] },
    );
  }
  shapes.push(
    { name: 'output_norm.weight', shape: [h.embeddingLength] },
    { name: 'output.weight', shape: [h.embeddingLength, vocabSize] },
  );
  return shapes;
}

export interface LlamaGgufInput {
  hparams: LlamaHyperParams;
  vocab: Vocabulary;
  /** Matrix type; 1-D tensors (norms) are always F32, as llama.cpp's converter writes them. */
  type: GgmlTypeName;
  /** Weights for a tensor name, in ggml order (shape[0] contiguous). */
  weights: (name: string, shape: readonly number[]) => Float32Array;
  extraMetadata?: ReadonlyArray<readonly [string, GgufMetadataValue]>;
}

export function llamaGgufDocument(input: LlamaGgufInput): GgufDocument {
  const { hparams: h, vocab } = input;
  const u32 = (value: number): GgufMetadataValue => ({ type: 'uint32', value });
  const metadata: Array<readonly [string, GgufMetadataValue]> = [
    ['general.architecture', { type: 'string', value: 'llama' }],
    ['general.name', { type: 'string', value: h.name }],
    ['general.file_type', u32(FILE_TYPE[input.type])],
    ['llama.context_length', u32(h.contextLength)],
    ['llama.embedding_length', u32(h.embeddingLength)],
    ['llama.block_count', u32(h.blockCount)],
    ['llama.feed_forward_length', u32(h.feedForwardLength)],
    ['llama.attention.head_count', u32(h.headCount)],
    ['llama.attention.head_count_kv', u32(h.headCountKv)],
    ['llama.rope.dimension_count', u32(h.embeddingLength / h.headCount)],
    ['llama.rope.freq_base', { type: 'float32', value: h.ropeFreqBase }],
    ['llama.attention.layer_norm_rms_epsilon', { type: 'float32', value: h.rmsEpsilon }],
    ['llama.vocab_size', u32(vocab.tokens.length)],
    ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
    ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: vocab.tokens }],
    ['tokenizer.ggml.scores', { type: 'array', itemType: 'float32', value: vocab.scores }],
    ['tokenizer.ggml.token_type', { type: 'array', itemType: 'int32', value: vocab.types }],
    ['tokenizer.ggml.bos_token_id', u32(vocab.bos)],
    ['tokenizer.ggml.eos_token_id', u32(vocab.eos)],
    ['tokenizer.ggml.unknown_token_id', u32(vocab.unk)],
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: vocab.addBos }],
    ['tokenizer.ggml.add_eos_token', { type: 'bool', value: false }],
    ...(input.extraMetadata ?? []),
  ];
  const tensors: GgufTensor[] = llamaTensorShapes(h, vocab.tokens.length).map(({ name, shape }) => ({
    name,
    shape,
    type: shape.length === 1 ? 'F32' : input.type,
    data: () => input.weights(name, shape),
  }));
  return { metadata, tensors };
}
