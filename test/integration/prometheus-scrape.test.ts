import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../../src/main.ts';
import { waitUntil } from '../support/deadline.ts';
import { type PrometheusServer, promtoolCheckMetrics, startPrometheus } from '../support/prometheus-server.ts';
import { postJson, startTestServer } from '../support/test-server.ts';

// Our /metrics as Prometheus itself reads it: promtool's parser and linter, and a real Prometheus scraping the
// server, whose stored counters move by exactly what the server generated.
describe('Prometheus reads /metrics (real server, real Prometheus)', () => {
  let server: RunningServer;
  let prometheus: PrometheusServer;
  before(async () => {
    server = await startTestServer({ parallel: 2 });
    prometheus = await startPrometheus(new URL(server.url).host);
  });
  after(async () => {
    await prometheus?.close();
    await server?.close();
  });

  const generated = async () => (await prometheus.query('sum(kindling_generated_tokens_total)'))[0]?.[1] ?? Number.NaN;

  test('promtool finds nothing to fix in the exposition, after generations too', async () => {
    const sync = await postJson(`${server.url}/api/v1/generate`, {
      prompt: 'Once',
      max_length: 6,
      ban_eos_token: true,
    });
    assert.equal(sync.status, 200);
    const check = promtoolCheckMetrics(await (await fetch(`${server.url}/metrics`)).text());
    assert.ok(check.ok, check.output);
    assert.equal(check.output, '');
  });

  test('the scrape is up, and the stored token counter moves by exactly the tokens generated', async () => {
    await waitUntil(
      async () => (await prometheus.query('up{job="kindling"}'))[0]?.[1] === 1,
      20_000,
      'Prometheus to scrape the server',
    );
    // Both scrapes must be of a quiet server: the counter is read once it stopped moving.
    const settled = async () => {
      let last = Number.NaN;
      await waitUntil(
        async () => {
          const now = await generated();
          const same = now === last;
          last = now;
          return same && Number.isFinite(now);
        },
        20_000,
        'a scrape of a quiet server',
        700,
      );
      return last;
    };
    const before = await settled();
    for (const max_length of [5, 9]) {
      const reply = await postJson(`${server.url}/api/v1/generate`, {
        prompt: 'The fox',
        max_length,
        ban_eos_token: true,
      });
      assert.equal(reply.status, 200);
    }
    await waitUntil(async () => (await generated()) > before, 20_000, 'Prometheus to see the new tokens');
    assert.equal((await settled()) - before, 5 + 9);
    const series = await prometheus.query('kindling_generated_tokens_total');
    assert.ok(
      series.every(([labels]) => labels['job'] === 'kindling' && typeof labels['key'] === 'string'),
      JSON.stringify(series),
    );
  });
});
