/**
 * Kindling client SDK: typed streaming clients for Kobold (ours and KoboldCpp), OpenAI-compatible servers,
 * Anthropic Messages and Ollama. Browser-safe: only fetch, AbortController, TextDecoder and timers.
 */

export { AnthropicClient } from './anthropic-client.ts';
export {
  AbortedError,
  type ClientErrorKind,
  ConnectionRefusedError,
  HeartbeatTimeoutError,
  HttpStatusError,
  isRetryableStatus,
  KindlingClientError,
  NetworkError,
  ProtocolError,
  ProviderStreamError,
} from './client-errors.ts';
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
export { API_KINDS, createClient } from './create-client.ts';
export {
  KindlingWsClient,
  type KindlingWsClientOptions,
  type WebSocketConstructorLike,
  type WebSocketLike,
} from './kindling-ws-client.ts';
export { KoboldClient } from './kobold-client.ts';
export { OllamaClient } from './ollama-client.ts';
export { OpenAIClient } from './openai-client.ts';
export { type SseEvent, type SseHandlers, SseReader } from './sse-reader.ts';
