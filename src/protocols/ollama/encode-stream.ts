import type { LoggedPart } from '../../core/logged-part.ts';
import type { WireMessage } from '../../core/wire-message.ts';
import { ollamaFinalFields, ollamaText } from './encode-response.ts';
import { ollamaErrorBody } from './errors.ts';
import type { OllamaResponseMeta } from './wire.ts';

/**
 * Ollama NDJSON, written as tokens arrive (KoboldCpp sends everything after the generation ended): one
 * `{"model","created_at","response"|"message","done":false}` line per batch of text (text that piled up
 * while the reader was busy becomes one line), then a final line with empty text, `done: true`,
 * `done_reason` and the counters. An error is a `{"error": "..."}` line, which Ollama's clients throw.
 */
export function createOllamaStreamEncoder(meta: OllamaResponseMeta) {
  const line = (fields: Record<string, unknown>): WireMessage => ({
    kind: 'line',
    json: JSON.stringify({ model: meta.model, created_at: new Date().toISOString(), ...fields }),
  });
  return (batch: readonly LoggedPart[]): WireMessage[] => {
    const out: WireMessage[] = [];
    let text = '';
    const flushText = () => {
      if (text === '') return;
      out.push(line({ ...ollamaText(meta, text), done: false }));
      text = '';
    };
    for (const { part } of batch) {
      if (part.type === 'text-delta') text += part.text;
      else if (part.type === 'finish') {
        flushText();
        out.push(line({ ...ollamaText(meta, ''), ...ollamaFinalFields(meta, part) }));
      } else if (part.type === 'error') {
        flushText();
        out.push({ kind: 'line', json: JSON.stringify(ollamaErrorBody(part.error)) });
      }
    }
    flushText();
    return out;
  };
}
