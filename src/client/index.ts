/**
 * Kindling client SDK: typed streaming clients for Kobold (ours and KoboldCpp), OpenAI-compatible servers,
 * Anthropic Messages and Ollama. Browser-safe: only fetch, AbortController, TextDecoder and timers.
 */
export { API_KINDS, createClient } from './create-client.ts';
export type {
  ApiKind,
  ChatMessage,
  ClientOptions,
  GenerationResult,
  RetryOptions,
  ServerInfo,
  StatusDetail,
  StopReason,
  StreamCallOptions,
  StreamEvent,
  StreamStatus,
  TextClient,
  TextRequest,
  TextStream,
  Usage,
} from './client-types.ts';
export {
  AbortedError,
  type ClientErrorKind,
  HeartbeatTimeoutError,
  HttpStatusError,
  isRetryableStatus,
  KindlingClientError,
  NetworkError,
  ProtocolError,
  ProviderStreamError,
} from './client-errors.ts';
export { KoboldClient } from './kobold-client.ts';
export { OpenAIClient } from './openai-client.ts';
export { AnthropicClient } from './anthropic-client.ts';
export { OllamaClient } from './ollama-client.ts';
export { SseReader, type SseEvent, type SseHandlers } from './sse-reader.ts';
