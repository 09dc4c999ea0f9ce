/** Real local HTTP servers that speak each provider's exact wire format, for SDK and browser tests. */
export { type FakeAnthropic, type FakeAnthropicOptions, startFakeAnthropic } from './fake-anthropic.ts';
export { type FakeServer, type RecordedRequest, startFakeHttpServer } from './fake-http-server.ts';
export { type FakeKobold, type FakeKoboldOptions, startFakeKobold } from './fake-kobold.ts';
export { type FakeOllama, type FakeOllamaOptions, startFakeOllama } from './fake-ollama.ts';
export { type FakeOpenRouter, type FakeOpenRouterOptions, startFakeOpenRouter } from './fake-openrouter.ts';
export { seededTokens } from './seeded-tokens.ts';
