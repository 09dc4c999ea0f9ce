import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../../src/main.ts';
import { type MetricFamily, parsePrometheusText, sampleValue } from '../support/prometheus-text.ts';
import { openStream } from '../support/sse-capture.ts';
import { banEndTokens, getJson, postJson, startTestServer } from '../support/test-server.ts';

/**
 * `/metrics` on the real server, parsed as Prometheus parses a scrape (test/support/prometheus-text.ts): each
 * counter moves by exactly what the generations and requests between two scrapes did.
 */
let server: RunningServer;
before(async () => {
  server = await startTestServer({ parallel: 2, maxQueue: 0 });
});
after(async () => server.close());

async function scrape(): Promise<Map<string, MetricFamily>> {
  const response = await fetch(`${server.url}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(await response.text());
}

/** How much each named series moved between two scrapes. */
function delta(before: Map<string, MetricFamily>, after: Map<string, MetricFamily>) {
  return (name: string, labels: Record<string, string> = {}) =>
    sampleValue(after, name, labels) - sampleValue(before, name, labels);
}

const ANON = { key: 'anonymous' };

describe('/metrics', () => {
  test('every metric is named kindling_*, with HELP and TYPE, and the exposition parses strictly', async () => {
    const families = await scrape();
    for (const family of families.values()) {
      assert.match(family.name, /^kindling_/);
      assert.ok(family.help, `${family.name} has no HELP`);
      assert.notEqual(family.type, 'untyped', `${family.name} has no TYPE`);
      if (family.type === 'counter') assert.match(family.name, /_total$/);
    }
    assert.equal(sampleValue(families, 'kindling_slots'), 2);
    assert.equal(
      sampleValue(families, 'kindling_info', {
        version: server.context.version,
        model: server.context.engine.model.name,
      }),
      1,
    );
  });

  test('generations: tokens by key, stop reasons, TTFT, inter-token gaps and queue waits move by the right amounts', async () => {
    const first = await scrape();
    const sync = await postJson(`${server.url}/api/v1/generate`, {
      prompt: 'Once upon',
      max_length: 7,
      ban_eos_token: true,
    });
    assert.equal(sync.status, 200);
    const stream = await openStream(`${server.url}/v1/completions`, {
      model: 'x',
      prompt: 'The fox',
      max_tokens: 5,
      stream: true,
      logit_bias: banEndTokens(server),
    });
    await stream.done;
    assert.match(stream.text, /\[DONE\]/);
    const usage = server.context.scheduler.last?.log.last;
    assert.equal(usage?.type, 'finish');
    const second = await scrape();
    const moved = delta(first, second);
    assert.equal(moved('kindling_generated_tokens_total', ANON), 7 + 5);
    const promptTokens = sync.body.results[0].prompt_tokens + (usage?.type === 'finish' ? usage.usage.promptTokens : 0);
    assert.equal(moved('kindling_prompt_tokens_total', ANON), promptTokens);
    assert.equal(moved('kindling_generations_total', { ...ANON, protocol: 'kobold', stop_reason: 'max-tokens' }), 1);
    assert.equal(
      moved('kindling_generations_total', { ...ANON, protocol: 'openai-completion', stop_reason: 'max-tokens' }),
      1,
    );
    assert.equal(moved('kindling_time_to_first_token_seconds_count'), 2);
    assert.equal(moved('kindling_inter_token_seconds_count'), 6 + 4);
    assert.equal(moved('kindling_queue_wait_seconds_count', { priority: 'interactive' }), 2);
    const routes = (route: string, protocol: string) =>
      moved('kindling_http_requests_total', { route, protocol, status: '200' });
    assert.equal(routes('/api/v1/generate', 'kobold'), 1);
    assert.equal(routes('/v1/completions', 'openai'), 1);
    // The scrape before this one counted once its response was over.
    assert.equal(routes('/metrics', 'server'), 1);
    assert.ok(sampleValue(second, 'kindling_kv_cache_tokens') > 0);
    assert.equal(sampleValue(second, 'kindling_slots_busy'), 0);
  });

  test('busy slots, 503s when the queue is full, client disconnects and aborts', async () => {
    const first = await scrape();
    const body = { prompt: 'Long', max_length: 400, ban_eos_token: true };
    const url = `${server.url}/api/extra/generate/stream`;
    const streams = [await openStream(url, body), await openStream(url, body)];
    for (const stream of streams) await stream.until((text) => text.includes('data:'));
    const busy = await scrape();
    assert.equal(sampleValue(busy, 'kindling_slots_busy'), 2);
    assert.equal(sampleValue(busy, 'kindling_queue_depth', { priority: 'interactive' }), 0);
    const refused = await postJson(`${server.url}/api/v1/generate`, body);
    assert.equal(refused.status, 503);
    for (const stream of streams) await stream.cancel();
    await waitFor(() => server.context.scheduler.busySlots === 0);
    // The request lines of the cut streams are written once their generations ended.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const moved = delta(first, await scrape());
    assert.equal(moved('kindling_http_rejected_total', { status: '503', code: 'queue_full' }), 1);
    assert.equal(
      moved('kindling_http_requests_total', { route: '/api/v1/generate', protocol: 'kobold', status: '503' }),
      1,
    );
    assert.equal(moved('kindling_client_disconnects_total', { protocol: 'kobold' }), 2);
    assert.equal(moved('kindling_generation_aborts_total', { cause: 'disconnect' }), 2);
    assert.equal(moved('kindling_generations_total', { ...ANON, protocol: 'kobold', stop_reason: 'abort' }), 2);
  });

  test('stream resumes and 429s', async () => {
    const first = await scrape();
    const url = `${server.url}/api/extra/generate/stream`;
    const body = { prompt: 'Again', max_length: 4, ban_eos_token: true, genkey: 'METRICS-RESUME' };
    await (await openStream(url, body)).done;
    const resumed = await openStream(url, body, { 'last-event-id': '2' });
    await resumed.done;
    assert.match(resumed.text, /finish_reason/);
    let limited = 0;
    for (let i = 0; i < 30 && limited === 0; i++) {
      const check = await postJson(`${server.url}/api/extra/generate/check`, { genkey: `UNKNOWN${i}` });
      if (check.status === 429) limited++;
    }
    assert.equal(limited, 1);
    const moved = delta(first, await scrape());
    assert.equal(moved('kindling_stream_resumes_total', { protocol: 'kobold' }), 1);
    assert.equal(moved('kindling_http_rejected_total', { status: '429', code: 'rate_limited' }), 1);
    // One generation, however many streams read it: its tokens count once.
    assert.equal(moved('kindling_generated_tokens_total', ANON), 4);
  });
});

describe('/metrics behind the password', () => {
  let locked: RunningServer;
  before(async () => {
    locked = await startTestServer({ password: 'metrics-key' });
  });
  after(async () => locked.close());

  test('401 without the key, the text with it; /health stays open', async () => {
    assert.equal((await getJson(`${locked.url}/metrics`)).status, 401);
    const scraped = await fetch(`${locked.url}/metrics`, { headers: { authorization: 'Bearer metrics-key' } });
    assert.equal(scraped.status, 200);
    assert.ok(parsePrometheusText(await scraped.text()).has('kindling_slots'));
    assert.deepEqual((await getJson(`${locked.url}/health`)).body, { status: 'ok' });
  });
});

describe('--no-metrics', () => {
  let bare: RunningServer;
  before(async () => {
    bare = await startTestServer({ metrics: false });
  });
  after(async () => bare.close());

  test('no /metrics route; /health answers', async () => {
    assert.equal((await getJson(`${bare.url}/metrics`)).status, 404);
    assert.equal((await getJson(`${bare.url}/health`)).status, 200);
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
