/**
 * Samples completions from a GGUF with node-llama-cpp (one thread, CPU), as `kindling serve` would run it:
 * `node --import tsx tools/sample-model.ts models/demo.gguf "Once upon a time" 5 0.7`.
 * Each sample uses its own seed (1…count) so the figures in models/README.md can be reproduced.
 */
import { getLlama, LlamaCompletion } from 'node-llama-cpp';

const [modelPath = 'models/demo.gguf', prompt = 'Once upon a time', countArg = '5', temperatureArg = '0.7'] =
  process.argv.slice(2);
const llama = await getLlama({ gpu: false, maxThreads: 1 });
const model = await llama.loadModel({ modelPath });
const context = await model.createContext({ contextSize: 256, threads: 1 });
const sequence = context.getSequence();
const completion = new LlamaCompletion({ contextSequence: sequence });
for (let seed = 1; seed <= Number(countArg); seed++) {
  await sequence.clearHistory();
  const start = performance.now();
  let tokens = 0;
  const text = await completion.generateCompletion(prompt, {
    temperature: Number(temperatureArg),
    seed,
    maxTokens: 200,
    onToken: (t) => {
      tokens += t.length;
    },
  });
  const seconds = (performance.now() - start) / 1000;
  console.log(`--- seed ${seed} (${tokens} tokens, ${(tokens / seconds).toFixed(0)} tok/s)\n${prompt}${text}`);
}
await context.dispose();
await model.dispose();
await llama.dispose();
