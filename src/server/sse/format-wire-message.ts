import type { WireMessage } from '../../core/wire-message.ts';

/**
 * SSE / NDJSON bytes for a message. Field order is `id`, `event`, `data`: KoboldAI Lite's regex needs
 * `event:` directly followed by a single `data:` line. Multi-line data gets one `data:` line per line,
 * as the SSE specification requires.
 */
export function formatWireMessage(message: WireMessage): string {
  switch (message.kind) {
    case 'line':
      return `${message.json}\n`;
    case 'comment':
      return `: ${message.text.replace(/[\r\n]+/g, ' ')}\n\n`;
    case 'event': {
      let out = '';
      if (message.id !== undefined) out += `id: ${message.id}\n`;
      if (message.event !== undefined) out += `event: ${message.event}\n`;
      // JSON data (every token event) has no line breaks: skip the split.
      if (!/[\r\n]/.test(message.data)) return `${out}data: ${message.data}\n\n`;
      for (const line of message.data.split(/\r\n|\r|\n/)) out += `data: ${line}\n`;
      return `${out}\n`;
    }
  }
}
