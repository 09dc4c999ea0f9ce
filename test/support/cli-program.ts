/**
 * A `kindling` program with only the SDK commands (`generate`, `chat`), for spawning in tests without loading
 * the server and its engine. `test/client/cli-commands.test.ts` also runs one case through the real bin.
 */
import { Command } from 'commander';
import { registerChatCommand } from '../../src/cli/chat-command.ts';
import { registerGenerateCommand } from '../../src/cli/generate-command.ts';

const program = new Command('kindling').exitOverride((error) => process.exit(error.exitCode));
registerGenerateCommand(program);
registerChatCommand(program);
await program.parseAsync(process.argv);
