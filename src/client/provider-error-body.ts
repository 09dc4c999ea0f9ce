/**
 * Pulls the human message out of whichever error envelope a provider uses:
 * Kobold `{"detail":{"msg","type"}}`, OpenAI/OpenRouter `{"error":{"message","type","code"}}`,
 * Anthropic `{"type":"error","error":{"type","message"}}`, Ollama `{"error":"text"}`, FastAPI `{"detail":"text"}`.
 */
export interface ProviderErrorBody {
  message?: string;
  type?: string;
  code?: string | number;
}

export function readProviderErrorBody(body: unknown): ProviderErrorBody {
  if (typeof body === 'string') return body.trim() ? { message: body.trim().slice(0, 500) } : {};
  if (!isRecord(body)) return {};
  const error = body['error'];
  if (typeof error === 'string') return { message: error };
  if (isRecord(error)) {
    const result: ProviderErrorBody = {};
    if (typeof error['message'] === 'string') result.message = error['message'];
    if (typeof error['type'] === 'string') result.type = error['type'];
    const code = error['code'];
    if (typeof code === 'string' || typeof code === 'number') result.code = code;
    return result;
  }
  const detail = body['detail'];
  if (typeof detail === 'string') return { message: detail };
  if (isRecord(detail)) {
    const result: ProviderErrorBody = {};
    if (typeof detail['msg'] === 'string') result.message = detail['msg'];
    if (typeof detail['type'] === 'string') result.type = detail['type'];
    return result;
  }
  if (typeof body['message'] === 'string') return { message: body['message'] };
  return {};
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
