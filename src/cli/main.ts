import { Command } from 'commander';
import type { ServerConfig } from '../config/server-config.ts';
import { KindlingError } from '../core/kindling-error.ts';
import { KINDLING_VERSION } from '../version.ts';
import { registerChatCommand } from './chat-command.ts';
import { registerFleetCommand } from './fleet-command.ts';
import { registerGenerateCommand } from './generate-command.ts';
import { type ExplicitSettings, registerServeCommand } from './serve-command.ts';

async function serve(config: ServerConfig, explicit: ExplicitSettings): Promise<void> {
  // Loaded only to serve: the server and its engine take seconds to import, which `--help` and a mistyped
  // flag should not wait for.
  const { startServer } = await import('../main.ts');
  const server = await startServer(config);
  // A closed stdout (piped into `head`, a parent that stopped reading) must not crash the server on its next line.
  process.stdout.on('error', () => {});
  const model = server.context.engine.model;
  // What was asked but not done (a context past the model's, threads past the cores) belongs on the line a
  // user reads, not in a log they never open.
  const flag = { contextSize: '--contextsize', threads: '--threads' } as const;
  const adjusted = (model.adjustments ?? [])
    .filter((a) => explicit[a.setting])
    .map((a) => `; ${flag[a.setting]} ${a.requested} lowered to ${a.used}, ${a.reason}`)
    .join('');
  process.stdout.write(
    `Kindling ${KINDLING_VERSION} is serving ${model.name} at ${server.url} on ${model.engineBuild}, context ${model.contextSize} tokens (web client: ${server.url}/, API docs: ${server.url}/api)${adjusted}\n`,
  );
  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) process.exit(130);
    closing = true;
    const graceMs = server.context.config.shutdownGraceMs;
    const running = server.context.scheduler.busySlots;
    process.stdout.write(
      `\n${signal}: shutting down${running > 0 ? `; ${running} running generation(s) may finish for ${graceMs / 1000} s` : ''} (${signal} again to stop at once)…\n`,
    );
    // A backstop: whatever still holds on, the process stops within the grace plus two seconds.
    setTimeout(() => {
      process.stderr.write('kindling: shutdown did not finish in time; exiting\n');
      process.exit(0);
    }, graceMs + 1900).unref();
    await server.close();
    process.exit(0);
  };
  // The key file is read again without a restart; a bad file keeps the keys in use (the log says why).
  process.on('SIGHUP', () => server.context.access?.reload('SIGHUP'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

const program = new Command('kindling')
  .description(
    'Local LLM text generation: KoboldAI/KoboldCpp, OpenAI, Anthropic and Ollama APIs, and a writing/chat web client',
  )
  .version(KINDLING_VERSION)
  .showHelpAfterError('(`kindling --help` lists the commands)');
registerServeCommand(program, serve);
registerGenerateCommand(program);
registerChatCommand(program);
registerFleetCommand(program);
// A mistyped flag gets its one error line and where to look, not the whole flag list (48 lines for serve).
for (const command of program.commands) {
  command.showHelpAfterError(`(\`kindling ${command.name()} --help\` lists every flag)`);
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  // A user's mistake (missing model, bad flag value) is one line and exit code 2, never a stack trace.
  if (error instanceof KindlingError) {
    process.stderr.write(`kindling: ${error.message}\n`);
    process.exit(2);
  }
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`kindling: ${message.split('\n')[0]}\n`);
  process.exit(1);
}
