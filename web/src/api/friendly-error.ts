import {
  AbortedError,
  HeartbeatTimeoutError,
  HttpStatusError,
  KindlingClientError,
  NetworkError,
  ProtocolError,
  ProviderStreamError,
} from '../../../src/client/index.ts';

// Turns SDK errors into a sentence that says what to fix. The SDK's error classes carry the status and the
// provider's own message, so nothing here parses message text.

export function friendlyError(error: unknown, url: string): string {
  if (error instanceof AbortedError) return 'Stopped.';
  if (error instanceof ProviderStreamError) {
    return `The provider reported an error mid-stream: ${error.providerMessage}${error.providerType ? ` (${error.providerType})` : ''}. The text received before it is kept.`;
  }
  if (error instanceof HttpStatusError) {
    const detail = error.providerMessage ? ` The server said: "${error.providerMessage}".` : '';
    if (error.status === 401 || error.status === 403) {
      return `The server rejected the API key (HTTP ${error.status}). Check the key for ${url}.${detail}`;
    }
    if (error.status === 404) {
      return `Nothing answers at this path (HTTP 404). Check the URL: OpenAI-compatible servers usually end in /v1, Kobold servers are just host:port.${detail}`;
    }
    if (error.status === 429) return `Rate limited (HTTP 429): wait a moment and try again.${detail}`;
    if (error.status === 503 || error.providerType === 'service_unavailable') {
      return `The server is busy with another generation (HTTP ${error.status}). Wait for it, or stop it, then retry.${detail}`;
    }
    if (error.status === 400 || error.status === 422)
      return `The server refused the request (HTTP ${error.status}).${detail}`;
    return `The server answered HTTP ${error.status}.${detail}`;
  }
  if (error instanceof HeartbeatTimeoutError) {
    return `The server went silent for ${Math.round(error.timeoutMs / 1000)} s and the stream was given up. The text received is kept.`;
  }
  if (error instanceof NetworkError) {
    return `Could not reach ${url}. Check that the server is running and the URL is right; if it is, the server may not allow requests from this page (CORS).`;
  }
  if (error instanceof ProtocolError) return `The server's reply did not follow its protocol: ${error.message}`;
  if (error instanceof KindlingClientError) return error.message;
  return error instanceof Error ? error.message : String(error);
}

/**
 * A failed cross-origin fetch looks the same to script whether the server is down or CORS blocked it. An
 * opaque `no-cors` request tells them apart: it succeeds when the server is up but refuses our origin.
 */
export async function diagnoseUnreachable(url: string): Promise<string | undefined> {
  try {
    await fetch(url, { mode: 'no-cors', cache: 'no-store', signal: AbortSignal.timeout(4000) });
    return `The server at ${url} is running but blocks requests from this page (CORS). Allow this origin on the server (KoboldCpp and Kindling allow all origins; Ollama needs OLLAMA_ORIGINS=*).`;
  } catch {
    return undefined;
  }
}
