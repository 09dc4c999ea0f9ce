import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KindlingError } from '../../src/core/kindling-error.ts';
import { RedisLink, reconnectDelayMs } from '../../src/fleet/redis-link.ts';
import { waitUntil } from '../support/deadline.ts';
import { freePort } from '../support/free-port.ts';
import { type RedisServer, startRedisServer } from '../support/redis-server.ts';

let redis: RedisServer;

describe("a node's link to the fleet's Redis", () => {
  before(async () => {
    redis = await startRedisServer();
  });
  after(async () => {
    await redis?.close();
  });

  it('runs commands, fails fast with a 503 naming Redis while it is gone, and reconnects on its own', async () => {
    const link = await RedisLink.connect({ url: redis.url, maxBackoffMs: 200 });
    const states: string[] = [];
    link.watch((state) => states.push(state));
    try {
      await link.run((r) => r.set('kindling:test', 'one'));
      assert.equal(await link.run((r) => r.get('kindling:test')), 'one');

      await redis.kill();
      await waitUntil(() => !link.ready, 5000, 'the link to notice Redis is gone');
      const started = Date.now();
      await assert.rejects(
        link.run((r) => r.get('kindling:test')),
        (error: unknown) =>
          error instanceof KindlingError &&
          error.status === 503 &&
          error.code === 'unavailable' &&
          error.message.includes(`redis://127.0.0.1:${redis.port}`),
      );
      assert.ok(Date.now() - started < 500, 'no command waits on a dead socket');

      await redis.start();
      await waitUntil(() => link.ready, 10_000, 'the link to reconnect');
      // Persistence is off: the restarted Redis is empty, as a crashed cache is.
      assert.equal(await link.run((r) => r.get('kindling:test')), null);
      assert.ok(states.includes('down') && states.at(-1) === 'ready', states.join(','));
    } finally {
      await link.close();
    }
  });

  it('a Redis that is not there at start is a 503 naming it, not a hang', async () => {
    const port = await freePort();
    await assert.rejects(
      RedisLink.connect({ url: `redis://:secret@127.0.0.1:${port}`, maxBackoffMs: 100 }),
      (error: unknown) =>
        error instanceof KindlingError &&
        error.code === 'unavailable' &&
        error.message.includes(`127.0.0.1:${port}`) &&
        !error.message.includes('secret'),
    );
  });

  it('backs off with jitter up to its cap', () => {
    for (let retries = 0; retries < 40; retries += 1) {
      const delay = reconnectDelayMs(retries, 2000);
      assert.ok(delay >= 25 && delay <= 2000, `${retries}: ${delay}`);
    }
    assert.ok(reconnectDelayMs(30, 2000) >= 1000);
  });
});
