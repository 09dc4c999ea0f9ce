/** A log destination: one whole line a call, as pino writes them. */
export interface LogSink {
  write(line: string): unknown;
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/** Fields the line's head already shows, or that say nothing to a person reading a terminal. */
const SHOWN = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'reqId', 'err']);

/**
 * `--log-format pretty`: pino's JSON lines turned into one readable line each (`12:03:04.567 INFO  [id] msg k=v`),
 * with an error's stack below it. No pretty-printing package: what a terminal needs is this small.
 */
export function prettyLogStream(out: LogSink): LogSink {
  return {
    write(line: string) {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return out.write(line);
      }
      return out.write(prettyLine(entry));
    },
  };
}

export function prettyLine(entry: Record<string, unknown>): string {
  const time = typeof entry.time === 'number' ? new Date(entry.time).toISOString().slice(11, 23) : '';
  const level = (LEVELS[Number(entry.level)] ?? String(entry.level)).padEnd(5);
  const id = entry.reqId === undefined ? '' : ` [${String(entry.reqId)}]`;
  const fields = Object.entries(entry)
    .filter(([name, value]) => !SHOWN.has(name) && value !== undefined && value !== null)
    .map(([name, value]) => `${name}=${typeof value === 'string' && !/\s/.test(value) ? value : JSON.stringify(value)}`)
    .join(' ');
  const err = entry.err as { type?: string; message?: string; stack?: string } | undefined;
  const stack = err ? `\n    ${(err.stack ?? `${err.type}: ${err.message}`).replaceAll('\n', '\n    ')}` : '';
  return `${time} ${level}${id} ${String(entry.msg ?? '')}${fields ? ` ${fields}` : ''}${stack}\n`;
}
