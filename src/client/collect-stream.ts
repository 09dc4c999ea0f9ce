import type { GenerationResult, TextStream } from './client-types.ts';

/** `generate()` for providers whose streamed form is the most robust way to get a whole answer. */
export async function collectStream(stream: TextStream): Promise<GenerationResult> {
  for await (const _ of stream) {
    // The result carries the full text; events are not needed here.
  }
  return stream.result;
}
