import type { Command } from 'commander';
import { AbortedError, type GenerationResult, type StreamEvent } from '../client/index.ts';
import {
  addClientOptions,
  type ClientFlags,
  clientFromFlags,
  errorLine,
  exitAfterFlush,
  requestFromFlags,
} from './client-command-options.ts';

interface GenerateFlags extends ClientFlags {
  /** commander's `--no-stream` sets `stream: false`. */
  stream: boolean;
}

/**
 * `kindling generate "prompt"`: prints tokens as they arrive. Ctrl-C aborts through the SDK signal (which for
 * Kobold servers also calls /api/extra/abort, so the server stops generating) and exits 130; a second
 * Ctrl-C exits at once.
 */
export function registerGenerateCommand(program: Command): void {
  addClientOptions(
    program
      .command('generate')
      .description('Generate text from a prompt on a running server, printing it as it arrives')
      .argument('<prompt>', 'the prompt text ("-" reads it from stdin)'),
  )
    .option('--no-stream', 'wait for the whole answer instead of streaming it')
    .action(async (prompt: string, flags: GenerateFlags) => {
      const controller = new AbortController();
      const onSigint = () => {
        if (controller.signal.aborted) process.exit(130);
        controller.abort();
      };
      process.on('SIGINT', onSigint);
      try {
        const text = prompt === '-' ? await readStdin() : prompt;
        const client = clientFromFlags(flags);
        const request = { ...requestFromFlags(flags), prompt: text };
        let result: GenerationResult;
        if (flags.stream) {
          const stream = client.stream(request, { signal: controller.signal });
          for await (const event of stream) report(event, flags);
          result = await stream.result;
        } else {
          result = await client.generate(request, { signal: controller.signal });
          process.stdout.write(result.text);
        }
        if (!result.text.endsWith('\n')) process.stdout.write('\n');
        if (flags.verbose) process.stderr.write(`[${result.stopReason}${usageText(result)}]\n`);
        exitAfterFlush(0);
      } catch (error) {
        if (error instanceof AbortedError) {
          process.stdout.write('\n');
          process.stderr.write('kindling: generation aborted\n');
          exitAfterFlush(130);
          return;
        }
        process.stderr.write(errorLine(error));
        exitAfterFlush(1);
      } finally {
        process.off('SIGINT', onSigint);
      }
    });
}

function report(event: StreamEvent, flags: ClientFlags): void {
  if (event.type === 'text') process.stdout.write(event.text);
  else if (event.type === 'status' && flags.verbose) {
    const detail = event.detail;
    const where = detail?.queuePosition !== undefined ? ` (position ${detail.queuePosition})` : '';
    const why = detail?.error ? `: ${detail.error.message}` : '';
    process.stderr.write(`[${event.status}${where}${why}]\n`);
  }
}

function usageText(result: GenerationResult): string {
  const usage = result.usage;
  if (!usage) return '';
  return `, ${usage.promptTokens ?? '?'} prompt + ${usage.completionTokens ?? '?'} generated tokens`;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
