import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePrometheusText, sampleValue } from '../support/prometheus-text.ts';

/** The parser the /metrics tests rely on must itself reject what Prometheus rejects. */
const VALID = [
  '# HELP a_total Requests, with \\\\ and \\n escaped',
  '# TYPE a_total counter',
  'a_total{route="/x",quote="say \\"hi\\"\\n"} 3',
  'a_total{route="/y"} 1e3',
  '# TYPE h histogram',
  'h_bucket{le="0.1"} 1',
  'h_bucket{le="+Inf"} 2',
  'h_sum 0.3',
  'h_count 2',
  '# a plain comment',
  'g -Inf 1700000000000',
  '',
].join('\n');

test('a valid exposition parses: escapes, exponents, histograms, untyped samples and timestamps', () => {
  const families = parsePrometheusText(VALID);
  assert.equal(families.get('a_total')?.help, 'Requests, with \\ and \n escaped');
  assert.equal(sampleValue(families, 'a_total', { route: '/x', quote: 'say "hi"\n' }), 3);
  assert.equal(sampleValue(families, 'a_total', { route: '/y' }), 1000);
  assert.equal(sampleValue(families, 'h_count'), 2);
  assert.equal(families.get('g')?.type, 'untyped');
});

test('what Prometheus would refuse is refused', () => {
  const bad: Record<string, [text: string, reason: RegExp]> = {
    'no final newline': ['a 1', /end with a newline/],
    'a bad metric name': ['1a 1\n', /no metric name/],
    'a bad escape': ['a{x="\\t"} 1\n', /bad escape/],
    'an unterminated label': ['a{x="1} 1\n', /unterminated/],
    'a bad value': ['a one\n', /bad value/],
    'a TYPE after samples': ['a 1\n# TYPE a counter\n', /TYPE after/],
    'a family split in two': ['a 1\nb 1\na{x="2"} 1\n', /not contiguous/],
    'a duplicate series': ['a{x="1"} 1\na{x="1"} 2\n', /duplicate series/],
    'a negative counter': ['# TYPE c counter\nc -1\n', /counter below 0/],
    'a histogram without +Inf': ['# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n', /no \+Inf/],
    'buckets not cumulative': [
      '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="2"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 2\n',
      /not cumulative/,
    ],
    'a _count unlike +Inf': ['# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n', /_count 3/],
    'a reserved label': ['a{__name__="x"} 1\n', /reserved label/],
  };
  for (const [why, [text, reason]] of Object.entries(bad)) assert.throws(() => parsePrometheusText(text), reason, why);
});
