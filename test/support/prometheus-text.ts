/**
 * A strict parser of the Prometheus text exposition format (version 0.0.4), as the Prometheus server reads a scrape:
 * https://prometheus.io/docs/instrumenting/exposition_formats/. It rejects what Prometheus would reject (bad names,
 * bad escapes, a TYPE after its samples, a family split in two, a duplicate series, a histogram whose buckets are not
 * cumulative or lack `+Inf`, a negative counter), so a test that parses `/metrics` with it proves the text scrapes.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  type: MetricType;
  help?: string;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set<MetricType>(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const SUFFIXES: Record<MetricType, readonly string[]> = {
  counter: [''],
  gauge: [''],
  untyped: [''],
  histogram: ['_bucket', '_sum', '_count'],
  summary: ['', '_sum', '_count'],
};

export function parsePrometheusText(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily>();
  const closed = new Set<string>();
  const series = new Set<string>();
  let current: MetricFamily | undefined;
  const lines = text.split('\n');
  if (lines.at(-1) !== '') throw new Error('the exposition must end with a newline');
  lines.forEach((line, index) => {
    const where = `line ${index + 1} (${JSON.stringify(line.slice(0, 80))})`;
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const match = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line);
      if (!match) return; // a plain comment
      const [, keyword, name, rest = ''] = match as unknown as [string, 'HELP' | 'TYPE', string, string?];
      if (!METRIC_NAME.test(name)) throw new Error(`${where}: bad metric name`);
      const family = open(name, where);
      if (keyword === 'HELP') {
        if (family.help !== undefined) throw new Error(`${where}: a second HELP for ${name}`);
        family.help = unescapeHelp(rest, where);
      } else {
        if (family.samples.length > 0) throw new Error(`${where}: TYPE after the samples of ${name}`);
        if (!TYPES.has(rest.trim() as MetricType)) throw new Error(`${where}: unknown type`);
        family.type = rest.trim() as MetricType;
      }
      return;
    }
    const sample = parseSample(line, where);
    const family = familyOf(sample.name);
    if (family !== current && current) closed.add(current.name);
    if (closed.has(family.name)) throw new Error(`${where}: the samples of ${family.name} are not contiguous`);
    current = family;
    const id = `${sample.name}${JSON.stringify(Object.entries(sample.labels).sort())}`;
    if (series.has(id)) throw new Error(`${where}: duplicate series`);
    series.add(id);
    if (family.type === 'counter' && !(sample.value >= 0)) throw new Error(`${where}: a counter below 0`);
    family.samples.push(sample);
  });
  for (const family of families.values()) if (family.type === 'histogram') checkHistogram(family);
  return families;

  function open(name: string, where: string): MetricFamily {
    const existing = families.get(name);
    if (existing) {
      if (closed.has(name) || (current && current !== existing))
        throw new Error(`${where}: metadata of ${name} after another family began`);
      return existing;
    }
    if (current) closed.add(current.name);
    const family: MetricFamily = { name, type: 'untyped', samples: [] };
    families.set(name, family);
    current = family;
    return family;
  }

  /** The family a sample belongs to: its own name, or a histogram/summary whose suffix it carries. */
  function familyOf(name: string): MetricFamily {
    for (const family of [current, ...families.values()]) {
      if (!family) continue;
      if (SUFFIXES[family.type].some((suffix) => `${family.name}${suffix}` === name)) return family;
    }
    const family: MetricFamily = { name, type: 'untyped', samples: [] };
    families.set(name, family);
    return family;
  }
}

function parseSample(line: string, where: string): Sample {
  const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
  if (!nameMatch) throw new Error(`${where}: no metric name`);
  const name = nameMatch[0];
  let at = name.length;
  const labels: Record<string, string> = {};
  if (line[at] === '{') {
    at++;
    for (;;) {
      if (line[at] === '}') {
        at++;
        break;
      }
      const labelMatch = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(at));
      if (!labelMatch) throw new Error(`${where}: bad label name at ${at}`);
      const label = labelMatch[0];
      if (!LABEL_NAME.test(label) || label.startsWith('__')) throw new Error(`${where}: reserved label ${label}`);
      at += label.length;
      if (line[at] !== '=' || line[at + 1] !== '"') throw new Error(`${where}: expected =" at ${at}`);
      at += 2;
      let value = '';
      for (;;) {
        const char = line[at];
        if (char === undefined) throw new Error(`${where}: unterminated label value`);
        at++;
        if (char === '"') break;
        if (char === '\\') {
          const escaped = line[at++];
          if (escaped === 'n') value += '\n';
          else if (escaped === '\\' || escaped === '"') value += escaped;
          else throw new Error(`${where}: bad escape \\${escaped}`);
        } else value += char;
      }
      if (label in labels) throw new Error(`${where}: label ${label} twice`);
      labels[label] = value;
      if (line[at] === ',') at++;
      else if (line[at] !== '}') throw new Error(`${where}: expected , or } at ${at}`);
    }
  }
  const rest = line.slice(at);
  const valueMatch = /^[ \t]+(\S+)(?:[ \t]+(-?\d+))?[ \t]*$/.exec(rest);
  if (!valueMatch) throw new Error(`${where}: expected a value`);
  return { name, labels, value: parseValue(valueMatch[1] as string, where) };
}

function parseValue(text: string, where: string): number {
  if (text === '+Inf' || text === 'Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (text === 'NaN') return Number.NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`${where}: bad value ${text}`);
  return Number(text);
}

function unescapeHelp(text: string, where: string): string {
  return text.replace(/\\(.?)/g, (_, escaped: string) => {
    if (escaped === 'n') return '\n';
    if (escaped === '\\') return '\\';
    throw new Error(`${where}: bad escape in HELP`);
  });
}

/** Per label set: `le` buckets cumulative and ascending, one `+Inf` equal to `_count`, and a `_sum`. */
function checkHistogram(family: MetricFamily): void {
  const groups = new Map<string, { buckets: Array<[number, number]>; count?: number; sum?: number }>();
  for (const sample of family.samples) {
    const { le, ...rest } = sample.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const group = groups.get(key) ?? { buckets: [] };
    groups.set(key, group);
    if (sample.name.endsWith('_bucket')) {
      if (le === undefined) throw new Error(`${family.name}: a bucket without le`);
      group.buckets.push([parseValue(le, family.name), sample.value]);
    } else if (sample.name.endsWith('_count')) group.count = sample.value;
    else group.sum = sample.value;
  }
  for (const [key, group] of groups) {
    const where = `${family.name}${key}`;
    const last = group.buckets.at(-1);
    if (!last || last[0] !== Number.POSITIVE_INFINITY) throw new Error(`${where}: no +Inf bucket last`);
    if (group.count !== last[1]) throw new Error(`${where}: _count ${group.count} is not the +Inf bucket ${last[1]}`);
    if (group.sum === undefined) throw new Error(`${where}: no _sum`);
    group.buckets.forEach(([le, value], i) => {
      const before = group.buckets[i - 1];
      if (before && (le <= before[0] || value < before[1]))
        throw new Error(`${where}: buckets not cumulative at le=${le}`);
    });
  }
}

/** The value of one series, 0 when it is absent (a counter not yet incremented has no series). */
export function sampleValue(
  families: Map<string, MetricFamily>,
  name: string,
  labels: Record<string, string> = {},
): number {
  for (const family of families.values()) {
    for (const sample of family.samples) {
      if (sample.name !== name) continue;
      const entries = Object.entries(labels);
      if (Object.keys(sample.labels).length === entries.length && entries.every(([k, v]) => sample.labels[k] === v))
        return sample.value;
    }
  }
  return 0;
}
