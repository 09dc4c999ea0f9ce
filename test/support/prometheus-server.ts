import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from './deadline.ts';
import { freePort } from './free-port.ts';

const INSTALL_HINT = 'install it with `apt-get install prometheus` (.ci/run does)';

function findBinary(name: string): string {
  for (const dir of [...(process.env['PATH'] ?? '').split(':'), '/usr/bin', '/usr/local/bin']) {
    if (dir !== '' && existsSync(join(dir, name))) return join(dir, name);
  }
  throw new Error(`${name} is not installed: ${INSTALL_HINT}`);
}

/** `promtool check metrics`: Prometheus's own parser and linter over an exposition; its complaints, or ''. */
export function promtoolCheckMetrics(exposition: string): { ok: boolean; output: string } {
  const run = spawnSync(findBinary('promtool'), ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
  return { ok: run.status === 0, output: `${run.stdout}${run.stderr}`.trim() };
}

export interface PrometheusServer {
  url: string;
  /** An instant query's vector, as [labels, value] pairs. */
  query(expr: string): Promise<Array<[Record<string, string>, number]>>;
  close(): Promise<void>;
}

/**
 * A real Prometheus on a free loopback port scraping `target` (host:port) every `intervalMs` into a temporary
 * database, as a user's own Prometheus would.
 */
export async function startPrometheus(target: string, intervalMs = 500): Promise<PrometheusServer> {
  const binary = findBinary('prometheus');
  const dir = mkdtempSync(join(tmpdir(), 'kindling-prometheus-'));
  const port = await freePort();
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    `global:\n  scrape_interval: ${intervalMs}ms\n  scrape_timeout: ${intervalMs}ms\nscrape_configs:\n  - job_name: kindling\n    static_configs:\n      - targets: ['${target}']\n`,
  );
  let log = '';
  const child: ChildProcess = spawn(
    binary,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  child.stderr?.on('data', (chunk) => {
    log += String(chunk);
  });
  const url = `http://127.0.0.1:${port}`;
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  for (let waited = 0; ; waited += 100) {
    if (child.exitCode !== null) throw new Error(`prometheus exited (${child.exitCode}): ${log}`);
    const ready = await fetch(`${url}/-/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    if (waited > 30_000) {
      await close();
      throw new Error(`prometheus was not ready within 30 s: ${log}`);
    }
    await sleep(100);
  }
  return {
    url,
    async query(expr) {
      const response = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`);
      const body = (await response.json()) as {
        status: string;
        error?: string;
        data?: { result: Array<{ metric: Record<string, string>; value: [number, string] }> };
      };
      if (body.status !== 'success') throw new Error(`query ${expr}: ${body.error}`);
      return (body.data?.result ?? []).map((r) => [r.metric, Number(r.value[1])]);
    },
    close,
  };
}
