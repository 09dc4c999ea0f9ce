import { type Command, Option } from 'commander';
import { ConnectionRefusedError } from '../client/index.ts';
import { DEFAULT_SERVER_URL, errorLine, exitAfterFlush } from './client-command-options.ts';

interface FleetFlags {
  url: string;
  key?: string;
  json?: boolean;
}

interface FleetNode {
  id: string;
  address: string;
  models: { id: string; name: string; context_size: number }[];
  slots: number;
  busy: number;
  queued: number;
  load: number;
  last_heartbeat_ms: number;
}

interface FleetStatus {
  fleet: boolean;
  node: string;
  nodes: FleetNode[];
}

/** `kindling fleet status`: the live nodes of the fleet a server belongs to, as `GET /api/extra/fleet` lists them. */
export function registerFleetCommand(program: Command): void {
  const fleet = program.command('fleet').description('The nodes of a Kindling fleet (kindling serve --redis)');
  fleet
    .command('status')
    .description('List the live nodes: address, models, slots, load and heartbeat age')
    .option('--url <url>', 'any node of the fleet', DEFAULT_SERVER_URL)
    .addOption(new Option('--key <key>', 'API key').env('KINDLING_API_KEY'))
    .option('--json', 'print the raw JSON body')
    .action(async (flags: FleetFlags) => {
      try {
        const text = await fetchStatus(flags);
        process.stdout.write(flags.json ? `${text}\n` : statusTable(JSON.parse(text) as FleetStatus));
        exitAfterFlush(0);
      } catch (error) {
        process.stderr.write(errorLine(error));
        exitAfterFlush(1);
      }
    });
}

async function fetchStatus(flags: FleetFlags): Promise<string> {
  const base = flags.url.replace(/\/+$/, '');
  let response: Response;
  try {
    response = await fetch(`${base}/api/extra/fleet`, {
      headers: flags.key ? { authorization: `Bearer ${flags.key}` } : {},
      signal: AbortSignal.timeout(15_000),
    });
  } catch (error) {
    const code = (error as { cause?: { code?: string } }).cause?.code;
    if (code === 'ECONNREFUSED') throw new ConnectionRefusedError(new URL(base).origin, error);
    throw error;
  }
  const text = await response.text();
  if (!response.ok) throw new Error(`${response.status} from ${base}: ${errorMessage(text)}`);
  return text;
}

/** The server's own error message (every envelope has one somewhere), not the whole body. */
function errorMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: { message?: string } | string; detail?: { msg?: string } };
    if (typeof body.error === 'object' && body.error?.message) return body.error.message;
    if (typeof body.error === 'string') return body.error;
    if (body.detail?.msg) return body.detail.msg;
  } catch {}
  return text.slice(0, 300);
}

export function statusTable(status: FleetStatus): string {
  const head = ['', 'NODE', 'ADDRESS', 'MODELS', 'SLOTS', 'BUSY', 'QUEUED', 'LOAD', 'HEARTBEAT'];
  const rows = status.nodes.map((node) => [
    node.id === status.node ? '*' : '',
    node.id,
    node.address,
    node.models.map((model) => `${model.name} (${model.context_size})`).join(', '),
    String(node.slots),
    String(node.busy),
    String(node.queued),
    node.load.toFixed(2),
    `${(node.last_heartbeat_ms / 1000).toFixed(1)} s ago`,
  ]);
  const widths = head.map((cell, column) => Math.max(cell.length, ...rows.map((row) => row[column]?.length ?? 0)));
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => cell.padEnd(widths[column] ?? 0))
      .join('  ')
      .trimEnd();
  const count = status.nodes.length;
  const title = status.fleet
    ? `${count} live node${count === 1 ? '' : 's'} (* answered)`
    : 'a single node (not in a fleet: no --redis)';
  return `${[title, line(head), ...rows.map(line)].join('\n')}\n`;
}
