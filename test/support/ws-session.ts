import WebSocket from 'ws';
import { withDeadline } from './deadline.ts';

export type WsMessage = {
  type: string;
  id?: string;
  text?: string;
  event_id?: number;
  finish_reason?: string;
  status?: number;
  message?: string;
};

/** A client of the Kobold WebSocket bridge that keeps every message it got. */
export class WsSession {
  readonly messages: WsMessage[] = [];
  private waiters: Array<() => void> = [];
  constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      this.messages.push(JSON.parse(String(data)));
      for (const wake of this.waiters.splice(0)) wake();
    });
  }
  static async open(url: string): Promise<WsSession> {
    const socket = new WebSocket(url);
    await withDeadline(
      new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject)),
      10_000,
      `the WebSocket handshake with ${url}`,
    );
    return new WsSession(socket);
  }
  send(message: unknown): void {
    this.socket.send(JSON.stringify(message));
  }
  async until(predicate: (messages: WsMessage[]) => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.messages)) {
      if (Date.now() > deadline) throw new Error(`timeout; got ${JSON.stringify(this.messages.slice(-5))}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }
  text(id: string): string {
    return this.messages
      .filter((m) => m.id === id && m.type === 'token')
      .map((m) => m.text)
      .join('');
  }
  ended(id: string): WsMessage | undefined {
    return this.messages.find((m) => m.id === id && m.type === 'end');
  }
}
