/**
 * The floor under every time-to-first-token figure: a bare node:http server in its own process that reads and
 * parses the Kobold request's JSON, then answers the SSE stream with one token event and the final one, with no
 * framework, scheduler or model. Timed by the same client as our server, its first token is what loopback HTTP
 * between two Node processes costs on this machine; what our server adds beyond the bare engine, less this, is
 * our own work.
 *
 *   started by the benchmarks through `startHttpFloorServer()`; `node --import tsx bench/http-floor.ts --serve
 *   --port N` is the child
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { type ServerProcess, whenServing } from './server-process.ts';

export function startHttpFloorServer(): Promise<ServerProcess> {
  const port = 6100 + Math.floor(Math.random() * 200);
  const child = spawn(process.execPath, ['--import', 'tsx', import.meta.filename, '--serve', '--port', String(port)], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return whenServing(child, `http://127.0.0.1:${port}`, '/api/extra/perf', 'the bare node:http server');
}

function serve(port: number): void {
  createServer((req, res) => {
    if (req.url === '/api/extra/perf') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ last_token_count: 1 }));
      return;
    }
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => {
      JSON.parse(body);
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
      res.write('id: 1\nevent: message\ndata: {"token": "x", "finish_reason": null}\n\n');
      res.end('id: 2\nevent: message\ndata: {"token": "", "finish_reason": "length"}\n\n');
    });
  }).listen(port, '127.0.0.1');
}

if (process.argv[1] === import.meta.filename) {
  const { values } = parseArgs({ options: { serve: { type: 'boolean' }, port: { type: 'string' } } });
  if (values.serve) serve(Number(values.port));
}
