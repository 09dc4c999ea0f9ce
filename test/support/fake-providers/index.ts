/** Real local HTTP servers that speak each provider's exact wire format, for SDK and browser tests. */
export { startFakeAnthropic, type FakeAnthropic, type FakeAnthropicOptions } from './fake-anthropic.ts';
export { startFakeHttpServer, type FakeServer, type RecordedRequest } from './fake-http-server.ts';
export { startFakeKobold, type FakeKobold, type FakeKoboldOptions } from './fake-kobold.ts';
export { startFakeOllama, type FakeOllama, type FakeOllamaOptions } from './fake-ollama.ts';
export { startFakeOpenRouter, type FakeOpenRouter, type FakeOpenRouterOptions } from './fake-openrouter.ts';
export { seededTokens } from './seeded-tokens.ts';
