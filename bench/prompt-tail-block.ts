/**
 * How long building a generation's prompt holds the event loop when the context is large: the prompt's tail that
 * can fit (about 8 characters a token, so ~1 MB of text for a 128K-token context) is tokenized in exact slices
 * that yield (src/engine/token-cuts.ts). Prints, per context size, the longest stretch between two turns of the
 * event loop while `buildPromptTokens` ran, its total time, and what tokenizing the same tail in one call takes
 * (what the server did before the slices).
 *
 *   node --import tsx bench/prompt-tail-block.ts [--model test|bench|<file.gguf>] [--contexts 4096,32768,131072]
 *     [--runs 3]
 *
 * Only tokenization runs (no decode), so any context size can be measured on a small model.
 */
import { parseArgs } from 'node:util';
import { LlamaEngine } from '../src/engine/llama/llama-engine.ts';
import { buildPromptTokens } from '../src/scheduler/prompt-tokens.ts';
import { generationRequest } from '../test/support/generation-request.ts';
import { testModelPath } from '../test/support/test-model.ts';
import { benchModelPath, median } from './bench-model.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'bench' },
    contexts: { type: 'string', default: '4096,32768,131072' },
    runs: { type: 'string', default: '3' },
  },
});
const modelPath =
  values.model === 'test' ? testModelPath() : values.model === 'bench' ? benchModelPath() : String(values.model);
const engine = await LlamaEngine.load({ modelPath, contextSize: 512, slots: 1, threads: 1, gpuLayers: 0 });
const sentence = 'Once upon a time there was a little fox, and the dog said yes to the happy cat. ';
const prompt = sentence.repeat(Math.ceil(8_000_000 / sentence.length));

/** Runs `work` while a ticker records the longest gap between two turns of the event loop. */
async function longestGap(work: () => Promise<unknown>): Promise<{ gapMs: number; totalMs: number }> {
  let last = performance.now();
  let gapMs = 0;
  let running = true;
  const tick = () => {
    const now = performance.now();
    gapMs = Math.max(gapMs, now - last);
    last = now;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  const started = performance.now();
  await work();
  const totalMs = performance.now() - started;
  running = false;
  tick();
  return { gapMs, totalMs };
}

console.log(
  `model ${modelPath}, prompt ${(prompt.length / 1e6).toFixed(1)} M characters, ${values.runs} runs (median)`,
);
console.log('| context | longest event-loop stretch | build time | the same tail in one tokenize call |');
console.log('|---|---|---|---|');
for (const context of String(values.contexts).split(',').map(Number)) {
  const gaps: number[] = [];
  const totals: number[] = [];
  const whole: number[] = [];
  for (let run = 0; run < Number(values.runs); run++) {
    const request = generationRequest(prompt, { maxTokens: 16, parseSpecialTokens: true });
    const { gapMs, totalMs } = await longestGap(() => buildPromptTokens(engine, request, context));
    // The tail the first try tokenizes: 8 characters a token (enough for this text, at ~4-5 a token).
    const tailChars = context * 8;
    gaps.push(gapMs);
    totals.push(totalMs);
    const started = performance.now();
    engine.tokenize(prompt.slice(prompt.length - Math.min(prompt.length, tailChars)), {
      special: true,
      addBos: false,
    });
    whole.push(performance.now() - started);
  }
  console.log(
    `| ${context} | ${median(gaps).toFixed(1)} ms | ${median(totals).toFixed(0)} ms | ${median(whole).toFixed(0)} ms |`,
  );
}
await engine.dispose();
