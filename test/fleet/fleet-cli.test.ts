import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { membershipOf } from '../../src/fleet/membership.ts';
import type { RunningServer } from '../../src/main.ts';
import { waitUntil } from '../support/deadline.ts';
import { freePort } from '../support/free-port.ts';
import { type RedisServer, startRedisServer } from '../support/redis-server.ts';
import { FULL_CLI, runCli as runAnyCli } from '../support/run-cli.ts';
import { startTestServer } from '../support/test-server.ts';

const runCli = (args: string[]) => runAnyCli(FULL_CLI, args);

let redis: RedisServer;
let a: RunningServer;
let b: RunningServer;

describe('kindling fleet status', () => {
  before(async () => {
    redis = await startRedisServer();
    a = await startTestServer({ redisUrl: redis.url, parallel: 2 });
    b = await startTestServer({ redisUrl: redis.url, parallel: 1 });
  });
  after(async () => {
    await Promise.allSettled([a?.close(), b?.close()]);
    await redis?.close();
  });

  it('prints the live nodes as a table, the answering node starred', async () => {
    const run = await runCli(['fleet', 'status', '--url', a.url]);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.trimEnd().split('\n');
    assert.equal(lines[0], '2 live nodes (* answered)');
    assert.match(lines[1] ?? '', /^\s+NODE\s+ADDRESS\s+MODELS\s+SLOTS\s+BUSY\s+QUEUED\s+LOAD\s+HEARTBEAT$/);
    const idA = membershipOf(a.context.redis)?.id ?? '';
    const idB = membershipOf(b.context.redis)?.id ?? '';
    const model = a.context.engine.model;
    const rowA = lines.find((line) => line.includes(idA)) ?? '';
    const rowB = lines.find((line) => line.includes(idB)) ?? '';
    assert.match(
      rowA,
      new RegExp(
        `^\\*\\s+${idA}\\s+${a.url}\\s+${model.name} \\(${model.contextSize}\\)\\s+2\\s+0\\s+0\\s+0\\.00\\s+\\d+\\.\\d s ago$`,
      ),
    );
    assert.match(rowB, new RegExp(`^\\s+${idB}\\s+${b.url}\\s+.+\\s+1\\s+0\\s+0\\s+0\\.00\\s+\\d+\\.\\d s ago$`));
  });

  it('prints the raw body with --json', async () => {
    const run = await runCli(['fleet', 'status', '--url', b.url, '--json']);
    assert.equal(run.code, 0, run.stderr);
    const body = JSON.parse(run.stdout);
    assert.equal(body.fleet, true);
    assert.equal(body.node, membershipOf(b.context.redis)?.id);
    assert.deepEqual(body.nodes.map((node: { address: string }) => node.address).sort(), [a.url, b.url].sort());
  });

  it("says Redis is unreachable in one line while the fleet's Redis is down", async () => {
    await redis.kill();
    await waitUntil(() => !a.context.redis?.ready, 5000, 'node A to see Redis gone');
    try {
      const run = await runCli(['fleet', 'status', '--url', a.url]);
      assert.equal(run.code, 1);
      assert.equal(run.stdout, '');
      assert.match(
        run.stderr,
        /^kindling: 503 from http:\/\/127\.0\.0\.1:\d+: The fleet's Redis at redis:\/\/127\.0\.0\.1:\d+ is unreachable/,
      );
      assert.equal(run.stderr.trimEnd().split('\n').length, 1);
    } finally {
      await redis.start();
    }
  });

  it('names the address when nothing listens there', async () => {
    const port = await freePort();
    const run = await runCli(['fleet', 'status', '--url', `http://127.0.0.1:${port}`]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, new RegExp(`no Kindling server at http://127\\.0\\.0\\.1:${port}`));
  });
});
