import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.ts';

export interface NginxProxy {
  url: string;
  close(): Promise<void>;
}

/** Debian's nginx, found on PATH or where the package puts it (root's PATH may lack /usr/sbin). */
export function findNginx(): string | undefined {
  for (const dir of [...(process.env['PATH'] ?? '').split(':'), '/usr/sbin', '/usr/local/sbin']) {
    if (dir !== '' && existsSync(join(dir, 'nginx'))) return join(dir, 'nginx');
  }
  return undefined;
}

/**
 * nginx in front of `target` on a loopback port, buffering as a default reverse proxy does and ignoring our
 * `X-Accel-Buffering: no` (as proxies configured to buffer do), so event streams arrive 16 KB at a time or at the
 * end. Runs in the foreground as one process with everything in a temp dir; throws "install nginx" without it.
 */
export async function startNginxProxy(target: string, options: { gzip?: boolean } = {}): Promise<NginxProxy> {
  const upstream = new URL(target);
  // nginx's own gzip holds output until a deflate buffer fills; the upstream is then asked for plain bytes.
  const gzip = options.gzip
    ? `      proxy_set_header Accept-Encoding "";
      gzip on;
      gzip_proxied any;
      gzip_types text/event-stream application/json;
`
    : '';
  return startNginx(
    (port) => `
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://${upstream.host};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering on;
      proxy_buffer_size 16k;
      proxy_buffers 4 16k;
      proxy_busy_buffers_size 16k;
      proxy_ignore_headers X-Accel-Buffering;
      proxy_read_timeout 300s;
${gzip}    }
  }
`,
  );
}

/**
 * nginx as docs/fleet.md configures it in front of a fleet: round-robin over `targets`, no buffering, HTTP/1.1
 * upstream keep-alive, and the next node tried on a refused connection or a 503.
 */
export async function startNginxFleetFront(targets: readonly string[]): Promise<NginxProxy> {
  const servers = targets.map((target) => `    server ${new URL(target).host} max_fails=1 fail_timeout=5s;`).join('\n');
  return startNginx(
    (port) => `
  upstream kindling {
${servers}
    keepalive 32;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://kindling;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 3600s;
      proxy_next_upstream error timeout http_503 non_idempotent;
      gzip off;
    }
  }
`,
  );
}

/** Runs nginx in the foreground, one process, with everything in a temp dir and `servers` as its http block. */
async function startNginx(servers: (port: number) => string): Promise<NginxProxy> {
  const binary = findNginx();
  if (binary === undefined) throw new Error('nginx is not installed: install nginx (apt-get install nginx)');
  const dir = mkdtempSync(join(tmpdir(), 'kindling-nginx-'));
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, sub));
  const port = await freePort();
  const config = `
daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${servers(port)}}
`;
  const configPath = join(dir, 'nginx.conf');
  writeFileSync(configPath, config);
  const tested = spawnSync(binary, ['-t', '-p', dir, '-e', join(dir, 'error.log'), '-c', configPath], {
    encoding: 'utf8',
  });
  if (tested.status !== 0) throw new Error(`nginx rejected its config: ${tested.stderr}`);
  const child: ChildProcess = spawn(binary, ['-p', dir, '-e', join(dir, 'error.log'), '-c', configPath], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Ready once it accepts connections on its port.
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) {
      const log = existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : '';
      throw new Error(`nginx exited at start: ${stderr}${log}`);
    }
    try {
      await fetch(`${url}/api/extra/version`);
      break;
    } catch {
      if (i > 100) throw new Error('nginx did not start listening');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return {
    url,
    close: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
