import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { AbortedError, type ChatMessage, type TextClient, type TextRequest } from '../client/index.ts';
import {
  addClientOptions,
  type ClientFlags,
  clientFromFlags,
  errorLine,
  exitAfterFlush,
  requestFromFlags,
} from './client-command-options.ts';

const HELP = 'Commands: /reset forgets the conversation, /exit (or Ctrl-D) quits. Ctrl-C stops a reply.\n';

/**
 * `kindling chat`: an interactive loop over the SDK. Each line is a user turn; the reply streams in. Ctrl-C
 * while a reply streams stops that reply (and, on Kobold servers, the generation); at the prompt it quits.
 * A failed turn prints one error line and the conversation goes on without it.
 */
export function registerChatCommand(program: Command): void {
  addClientOptions(program.command('chat').description('Chat with a running server in the terminal')).action(
    async (flags: ClientFlags) => {
      const client = clientFromFlags(flags);
      const base = requestFromFlags(flags);
      const interactive = Boolean(process.stdin.isTTY);
      const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: interactive });
      const history: ChatMessage[] = [];
      let current: AbortController | undefined;
      const interrupt = () => {
        if (current) current.abort();
        else rl.close();
      };
      rl.on('SIGINT', interrupt);
      process.on('SIGINT', interrupt);
      if (interactive) process.stdout.write(HELP);
      rl.setPrompt('> ');
      rl.prompt();
      try {
        for await (const raw of rl) {
          const line = raw.trim();
          if (line === '/exit' || line === '/quit') break;
          if (line === '/reset') {
            history.length = 0;
            process.stdout.write('(conversation cleared)\n');
          } else if (line !== '') {
            current = new AbortController();
            const reply = await replyTo(
              client,
              { ...base, messages: [...history, { role: 'user', content: line }] },
              current.signal,
            );
            current = undefined;
            if (reply !== undefined)
              history.push({ role: 'user', content: line }, { role: 'assistant', content: reply });
          }
          rl.prompt();
        }
      } finally {
        process.off('SIGINT', interrupt);
        rl.close();
      }
      process.stdout.write('\n');
      exitAfterFlush(0);
    },
  );
}

/** Streams one reply to stdout. Returns its text, or undefined when it failed (nothing is kept then). */
async function replyTo(client: TextClient, request: TextRequest, signal: AbortSignal): Promise<string | undefined> {
  let text = '';
  try {
    const stream = client.stream(request, { signal });
    for await (const event of stream) {
      if (event.type !== 'text') continue;
      // Completion models answer "Assistant:" with a leading space; it is not part of the reply.
      const delta = text === '' ? event.text.trimStart() : event.text;
      text += delta;
      process.stdout.write(delta);
    }
    process.stdout.write('\n');
    return text.trimEnd();
  } catch (error) {
    if (error instanceof AbortedError) {
      process.stdout.write(' [stopped]\n');
      // A stopped reply is kept: the user saw it, and may ask the model to go on from there.
      return text.trimEnd();
    }
    process.stdout.write('\n');
    process.stderr.write(errorLine(error));
    return undefined;
  }
}
