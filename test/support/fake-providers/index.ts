/** Real local HTTP servers that speak each provider's exact wire format, for SDK and browser tests. */
export { startFakeAnthropic } from './fake-anthropic.ts';
export { type FakeKobold, startFakeKobold } from './fake-kobold.ts';
export { startFakeOllama } from './fake-ollama.ts';
export { startFakeOpenRouter } from './fake-openrouter.ts';
