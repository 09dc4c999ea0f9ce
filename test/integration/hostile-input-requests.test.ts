/**
 * Hostile request values and sizes (issue 16, items 2, 4 and 5): gigabyte sampler windows, logit_bias ids that
 * wrap or lie past the vocabulary, a number where each protocol wants a prompt, and 8 MB / 31 MB bodies that must
 * not hold up other requests. Harness and rules: test/support/hostile-harness.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sleep } from '../support/deadline.ts';
import { chat, generate, type HostileCase, hostileTests, runCase, STREAM } from '../support/hostile-harness.ts';
import { envelopeProblem } from '../support/protocol-envelope.ts';
import { rawRequest } from '../support/raw-http.ts';

const cases: HostileCase[] = [];

// 2. Sampler windows: clamped (200) or refused, never an allocation of the window's size.
cases.push(
  {
    name: 'dry_penalty_last_n 1e9',
    request: { path: '/api/v1/generate', body: generate({ dry_multiplier: 0.8, dry_penalty_last_n: 1e9 }) },
    expect: 'ok-or-rejected',
  },
  {
    name: 'rep_pen_range 1e9',
    request: { path: '/api/v1/generate', body: generate({ rep_pen: 1.1, rep_pen_range: 1e9 }) },
    expect: 'ok-or-rejected',
  },
);

const logitIds: Array<[string, string]> = [
  ['4294967464 (wraps to 168)', '4294967464'],
  ['past the vocabulary', '999999'],
];
for (const [label, id] of logitIds) {
  cases.push(
    {
      name: `Kobold logit_bias id ${label}`,
      request: { path: '/api/v1/generate', body: generate({ logit_bias: { [id]: -100 } }) },
      expect: 'rejected',
      mentions: /logit_bias/,
    },
    {
      name: `OpenAI logit_bias id ${label}`,
      request: {
        path: '/v1/completions',
        body: { model: 'tiny', prompt: 'Once', max_tokens: 4, logit_bias: { [id]: -100 } },
      },
      expect: 'rejected',
      mentions: /logit_bias/,
    },
  );
}
const numericPrompts: Array<[string, unknown, RegExp]> = [
  ['/api/v1/generate', { prompt: 123, max_length: 4 }, /prompt/],
  [STREAM, { prompt: 123, max_length: 4 }, /prompt/],
  ['/api/extra/tokencount', { prompt: 123 }, /prompt/],
  ['/v1/completions', { model: 'tiny', prompt: 123, max_tokens: 4 }, /prompt/],
  ['/v1/chat/completions', chat({ messages: [{ role: 'user', content: 123 }] }), /content/],
  ['/v1/messages', { model: 'tiny', max_tokens: 4, messages: [{ role: 'user', content: 123 }] }, /content/],
  ['/api/generate', { model: 'tiny', prompt: 123, stream: false, options: { num_predict: 4 } }, /prompt/],
  [
    '/api/chat',
    { model: 'tiny', messages: [{ role: 'user', content: 123 }], stream: false, options: { num_predict: 4 } },
    /content/,
  ],
];
for (const [path, body, mentions] of numericPrompts) {
  cases.push({ name: `numeric prompt on ${path}`, request: { path, body }, expect: 'rejected', mentions });
}

hostileTests(cases);

// 4. Big bodies finish or are refused in time, and never hold up other requests for long.
const bigText = (mb: number) =>
  'Once upon a time there was a fox. '.repeat(Math.ceil((mb * 1048576) / 34)).slice(0, mb * 1048576);
for (const [path, mb, field, deadlineMs] of [
  ['/api/v1/generate', 8, { max_length: 4 }, 20_000],
  ['/api/extra/tokencount', 31, {}, 45_000],
] as const) {
  test(`a ${mb} MB body on ${path} finishes or is refused, and a probe is never held up past 1 s`, async () => {
    await runCase('plain', async (server) => {
      const body = JSON.stringify({ prompt: bigText(mb), ...field });
      let finished = false;
      const big = rawRequest(server.url, { path, body, timeoutMs: deadlineMs, keepBytes: 1 << 20 }).finally(() => {
        finished = true;
      });
      big.catch(() => {}); // awaited below; a failing probe must not leave it unhandled
      const probes: number[] = [];
      await sleep(50);
      while (!finished) {
        const started = performance.now();
        const probe = await rawRequest(server.url, { path: '/api/extra/version', timeoutMs: deadlineMs }).catch(
          async (error: Error) => {
            throw await server.explain(error);
          },
        );
        assert.equal(probe.status, 200);
        probes.push(performance.now() - started);
        await sleep(100);
      }
      const response = await big.catch(async (error: Error) => {
        throw await server.explain(error);
      });
      server.assertHealthy();
      const worst = Math.max(0, ...probes);
      assert.ok(
        response.status === 200 || (response.status >= 400 && response.status < 500),
        `HTTP ${response.status} ${response.text.slice(0, 300)}`,
      );
      if (response.status !== 200) assert.equal(envelopeProblem('kobold', response.body), undefined);
      assert.ok(
        worst < 1000,
        `a probe request waited ${Math.round(worst)} ms during the ${mb} MB body (${probes.length} probes)`,
      );
    });
  });
}
