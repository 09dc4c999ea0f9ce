import type { LlamaEmbeddingContext, LlamaModel } from 'node-llama-cpp';
import { KindlingError } from '../../core/kindling-error.ts';

/**
 * Embeddings for models made for them: a GGUF that declares a pooling type (`<arch>.pooling_type`), as
 * embedding models converted by llama.cpp do. A chat model's hidden states are not useful embeddings, so
 * such models report `canEmbed: false` rather than answer with vectors nobody should rely on.
 * The embedding context is created on first use (it costs its own memory) with the server's thread count.
 */
export class LlamaEmbedder {
  private context?: Promise<LlamaEmbeddingContext>;

  private constructor(
    private readonly model: LlamaModel,
    private readonly options: { threads: number; contextSize: number },
  ) {}

  static forModel(model: LlamaModel, options: { threads: number; contextSize: number }): LlamaEmbedder | undefined {
    const metadata = model.fileInfo.metadata as Record<string, unknown> & { general?: { architecture?: string } };
    const architecture = metadata.general?.architecture;
    const section = architecture ? (metadata[architecture] as { pooling_type?: unknown } | undefined) : undefined;
    return section?.pooling_type !== undefined ? new LlamaEmbedder(model, options) : undefined;
  }

  async embed(text: string): Promise<number[]> {
    this.context ??= this.model.createEmbeddingContext({
      contextSize: this.options.contextSize,
      threads: this.options.threads,
    });
    const context = await this.context;
    const length = context.calculateInputLength(text);
    if (length > this.options.contextSize) {
      throw KindlingError.badInput(
        'input',
        `the text is ${length} tokens; the embedding context holds ${this.options.contextSize}`,
      );
    }
    const embedding = await context.getEmbeddingFor(text);
    return [...embedding.vector];
  }

  async dispose(): Promise<void> {
    if (this.context) await (await this.context).dispose();
  }
}
